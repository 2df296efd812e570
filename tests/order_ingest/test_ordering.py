"""Which webhook decides: `update_time`, never arrival order (unit table; the worker on a broker: test_worker.py)."""

from __future__ import annotations

import itertools

import pytest

from services.order_ingest.decide import OrderFacts, decide, skip_without_fetch
from services.order_ingest.ordering import OrderEvent, order_events, sort_out
from shared.stores.model import LINKED, StoreRecord
from shared.tiktok.webhooks import parse_webhook

STORE = StoreRecord(nickname="Main", status=LINKED, shop_id="s1")  # takes orders from every warehouse


def event(status: str | None, update_time: int | None, event_type: int = 1, order_id: str = "o1") -> OrderEvent:
    return OrderEvent("s1", order_id, event_type, status, update_time, f"n-{status}-{update_time}", None,
                      record=None)  # type: ignore[arg-type]


class Pipeline:
    """The ingest's rule run over batches of one order's events; TikTok's truth is the newest status pushed.

    Mirrors `IngestWorker.process` for one linked store: stale events are counted; the provably newest webhook
    skips alone only for a status that cannot qualify; anything else fetches Order Detail.
    """

    def __init__(self, truth: str, truth_time: int) -> None:
        self.truth, self.truth_time = truth, truth_time
        self.decided_through: int | None = None
        self.accepted = False
        self.withdrawn = False
        self.stale = 0
        self.fetches = 0

    def batch(self, events: list[OrderEvent]) -> None:
        ordered = sort_out(events, self.decided_through)
        self.stale += len(ordered.stale)
        if not ordered.fresh:
            return
        early = skip_without_fetch(ordered.newest.status, self.accepted) if ordered.newest else None
        if early is None:
            self.fetches += 1
            decision = decide(OrderFacts(self.truth, "FULFILLMENT_BY_SELLER", "SELLER", "w"), STORE, self.accepted)
            self.withdrawn = decision.kind == "withdraw" or (self.withdrawn and decision.kind == "skip")
            self.accepted = decision.kind == "accept"
            through = max([self.truth_time, *(e.update_time or 0 for e in ordered.fresh)])
        else:
            through = ordered.latest.update_time or 0
        self.decided_through = max(self.decided_through or 0, through)

    @property
    def outcome(self) -> str:
        return "active" if self.accepted else "withdrawn" if self.withdrawn else "left_out"


# (the events TikTok pushed, oldest first) -> what the OMS must end with
SCENARIOS = {
    "awaiting then late on_hold": ([("ON_HOLD", 100), ("AWAITING_SHIPMENT", 200)], "active"),
    "on_hold, awaiting, late on_hold retry": ([("ON_HOLD", 100), ("AWAITING_SHIPMENT", 200), ("ON_HOLD", 100)],
                                              "active"),
    "cancelled then a late awaiting retry": ([("AWAITING_SHIPMENT", 100), ("CANCEL", 200)], "left_out"),
    "unpaid, awaiting, cancelled": ([("UNPAID", 50), ("AWAITING_SHIPMENT", 100), ("CANCEL", 200)], "left_out"),
}


def arrivals(pushed: list[tuple[str, int]]) -> list[list[list[OrderEvent]]]:
    """Every arrival order of the pushed events, each split into batches every possible way."""
    out = []
    for perm in itertools.permutations(pushed):
        events = [event(s, t) for s, t in perm]
        for cuts in itertools.product([False, True], repeat=len(events) - 1):
            batches, current = [], [events[0]]
            for cut, e in zip(cuts, events[1:], strict=True):  # one cut between each two events
                if cut:
                    batches.append(current)
                    current = []
                current.append(e)
            out.append([*batches, current])
    return out


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_decision_follows_the_newest_status_in_every_arrival_order(name: str) -> None:
    pushed, expected = SCENARIOS[name]
    newest_status, newest_time = max(pushed, key=lambda p: p[1])
    for batches in arrivals(pushed):
        pipeline = Pipeline(newest_status, newest_time)
        for batch in batches:
            pipeline.batch(batch)
        order = [[(e.status, e.update_time) for e in b] for b in batches]
        assert pipeline.outcome == expected, order


def test_an_event_older_than_the_decision_is_stale_and_a_later_one_is_not() -> None:
    ordered = sort_out([event("ON_HOLD", 100), event("CANCEL", 300), event("AWAITING_SHIPMENT", 200)], 200)
    assert [(e.status, e.update_time) for e in ordered.stale] == [("ON_HOLD", 100)]
    assert [e.status for e in ordered.fresh] == ["AWAITING_SHIPMENT", "CANCEL"]  # oldest first, by update_time
    assert ordered.newest is not None and ordered.newest.status == "CANCEL"


def test_the_newest_of_a_batch_decides_whatever_the_arrival_order() -> None:
    for perm in itertools.permutations([event("ON_HOLD", 100), event("AWAITING_SHIPMENT", 200)]):
        ordered = sort_out(list(perm), None)
        assert ordered.stale == [] and ordered.newest is not None
        assert ordered.newest.status == "AWAITING_SHIPMENT"


@pytest.mark.parametrize("events", [
    [event("ON_HOLD", 200), event("AWAITING_SHIPMENT", 200)],  # two different events at the same second
    [event("ON_HOLD", 100), event("AWAITING_SHIPMENT", None)],  # an undated event
    [event("ON_HOLD", 200), event(None, 200, event_type=3)],  # a status and an address change at one second
])
def test_ties_and_undated_events_leave_the_decision_to_order_detail(events: list[OrderEvent]) -> None:
    ordered = sort_out(events, None)
    assert ordered.newest is None and len(ordered.fresh) == 2


def test_copies_of_one_event_are_no_tie() -> None:
    ordered = sort_out([event("UNPAID", 200), event("UNPAID", 200)], None)
    assert ordered.newest is not None and ordered.newest.status == "UNPAID"


def test_an_equal_update_time_is_not_stale() -> None:
    """A webhook at the decided second may carry a change TikTok did not date later (an address, a package)."""
    assert sort_out([event(None, 200, event_type=3)], 200).stale == []


def named(event_type: int, data: dict[str, object]) -> list[OrderEvent]:
    webhook = parse_webhook({"type": event_type, "shop_id": "s1", "timestamp": 1, "data": data})
    return order_events(webhook, None, record=None)


# a malformed `update_time` or order id fails at the parse, naming the field: tests/tiktok/test_webhooks.py
@pytest.mark.parametrize(("data", "expected"), [
    ({"update_time": 1700000000}, 1700000000), ({"update_time": "1700000000"}, 1700000000), ({}, None),
])
def test_update_time_is_read_as_unix_seconds(data: dict[str, object], expected: int | None) -> None:
    assert [e.update_time for e in named(3, {"order_id": "o1", **data})] == [expected]


@pytest.mark.parametrize(("event_type", "data", "expected"), [
    (1, {"order_id": "576"}, ["576"]),
    (3, {"order_id": 576}, ["576"]),
    (4, {"sc_type": "COMBINE", "package_list": [{"package_id": "p1", "order_id_list": ["a", "b"]},
                                                {"package_id": "p2", "order_id_list": ["b", "c"]}]}, ["a", "b", "c"]),
    (4, {"sc_type": "SPLIT", "package_list": [{"package_id": "p1", "order_id_list": [57]}]}, ["57"]),
    (4, {"package_list": []}, []),
    (5, {"product_id": "576"}, []),
])
def test_the_orders_a_webhook_names(event_type: int, data: dict[str, object], expected: list[str]) -> None:
    assert [e.order_id for e in named(event_type, data)] == expected

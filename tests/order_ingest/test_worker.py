"""The worker against the real broker with a scripted TikTok client: lanes per shop, commits, the DLQ."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from aiokafka.structs import TopicPartition

from services.order_ingest import worker as worker_module
from services.order_ingest.ledger import OffsetLedger
from services.order_ingest.service import GROUP
from services.order_ingest.worker import lane_of
from shared.dedupe import NotificationWindow, recent_notifications
from shared.tiktok.client import PACING, TikTokClient
from shared.tiktok.errors import NotFound, PermissionDenied
from shared.topics import DLQ, ORDERS_INGESTED, ORDERS_SKIPPED, TIKTOK_WEBHOOKS, topic_name
from tests.fakes import UPDATE_TIMES, every_order_found
from tests.order_ingest.conftest import SHOP_A, SHOP_B, Rig
from tests.topicview import TopicView, everything
from tests.waiting import eventually


class Storm:
    """A 429 storm as the ingest's client lives it: its policy has no attempt limit, so each call lasts until the
    storm is lifted, then answers the orders."""

    def __init__(self) -> None:
        self._lifted = asyncio.Event()

    def lift(self) -> None:
        self._lifted.set()

    async def __call__(self, ids: list[str]) -> list[dict[str, Any]]:
        await self._lifted.wait()
        return every_order_found(ids)


def order_ids(view: TopicView) -> set[str]:
    return {v["order_id"] for v in view.values()}


async def test_a_shop_stuck_in_a_429_storm_holds_up_no_other_shop_and_is_not_committed(rig: Rig) -> None:
    rig.start()
    rig.tiktok.order_answers[SHOP_A] = storm = Storm()
    stuck = await rig.push(SHOP_A, "a1")
    last = await rig.push(SHOP_B, "b1")
    async with TopicView(rig.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 1)
        assert order_ids(view) == {"b1"}  # shop B's order went through while shop A was refused
        assert await rig.committed() in (None, stuck)  # nothing past shop A's unfinished record
        storm.lift()
        await view.until(lambda rs: len(rs) == 2)
        assert order_ids(view) == {"a1", "b1"}
    await rig.until_committed(last + 1)


async def test_events_that_arrive_while_the_shop_is_busy_are_coalesced_into_one_fetch(rig: Rig) -> None:
    rig.worker.lanes_per_shop = 1  # one lane: every order of the shop waits behind a1's fetch
    rig.start()
    rig.tiktok.order_answers[SHOP_A] = busy = Storm()
    await rig.push(SHOP_A, "a1")
    await eventually(lambda: rig.tiktok.order_calls, within=20, what="a1 fetched")
    last = [await rig.push(SHOP_A, order_id) for order_id in ("a2", "a2", "a2", "a3")][-1]
    await eventually(lambda: rig.worker.ledger.in_flight() >= 5, within=20,
                     what="all five read and waiting behind a1's fetch")
    busy.lift()
    await rig.until_committed(last + 1)
    assert {tuple(ids) for _, ids in rig.tiktok.order_calls} == {("a1",), ("a2", "a3")}
    assert rig.tiktok.order_calls[-1] == (SHOP_A, ["a2", "a3"])  # three events for a2, one fetch
    async with TopicView(rig.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 3)
        assert order_ids(view) == {"a1", "a2", "a3"}


async def test_consumption_pauses_while_too_many_records_are_unfinished_and_resumes(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "MAX_IN_FLIGHT", 1)
    rig.start()
    rig.tiktok.order_answers[SHOP_A] = storm = Storm()
    last = [await rig.push(SHOP_A, order_id) for order_id in ("a1", "a2")][-1]
    await eventually(rig.worker.consumer.paused, within=20, what="consumption paused")
    storm.lift()
    await rig.until_committed(last + 1)
    await eventually(lambda: not rig.worker.consumer.paused(), within=20, what="consumption resumed")


async def test_a_status_that_cannot_qualify_is_skipped_without_an_api_call(rig: Rig) -> None:
    rig.start()
    await rig.push(SHOP_A, "a1", status="UNPAID")
    async with TopicView(rig.settings, ORDERS_SKIPPED) as view:
        await view.until(lambda rs: len(rs) == 1)
        skip = view.values()[0]
    assert skip["reasons"] == ["status:UNPAID"] and skip["decided_from"] == "webhook"
    assert skip["notification_id"].startswith("n-a1-") and skip["store_nickname"] == f"Store {SHOP_A}"
    assert rig.tiktok.order_calls == []


async def test_permission_denied_sends_the_original_record_to_the_dlq_with_the_reason(rig: Rig) -> None:
    rig.start()
    def denied(ids: list[str]) -> list[dict[str, Any]]:
        raise PermissionDenied("no scope", code=105005, request_id="r-1")

    rig.tiktok.order_answers[SHOP_A] = denied
    offset = await rig.push(SHOP_A, "a1")
    async with TopicView(rig.settings, DLQ) as view:
        await view.until(lambda rs: len(rs) == 1)
        record = view.records[0]
    headers = {k: v.decode() for k, v in record.headers}
    assert headers["shopsync_dlq_reason"].startswith("permission_denied: code 105005")
    assert headers["shopsync_dlq_topic"] == topic_name(TIKTOK_WEBHOOKS, rig.settings.shopsync_topic_prefix)
    assert (headers["shopsync_dlq_partition"], headers["shopsync_dlq_offset"]) == ("0", str(offset))
    assert record.key == f"{SHOP_A}:a1".encode() and orjson.loads(record.value)["data"]["order_id"] == "a1"
    await rig.until_committed(offset + 1)  # dead-lettered counts as done: the partition moves on


async def test_an_order_tiktok_does_not_know_is_dead_lettered_and_the_rest_of_its_batch_arrives(rig: Rig) -> None:
    rig.start()
    def one_unknown(ids: list[str]) -> list[dict[str, Any]]:
        if "gone" in ids:
            raise NotFound("order not found", code=21008111)
        return every_order_found(ids)

    rig.tiktok.order_answers[SHOP_A] = one_unknown
    await rig.push(SHOP_A, "gone")
    await rig.push(SHOP_A, "a1")
    async with TopicView(rig.settings, DLQ) as dlq:
        await dlq.until(lambda rs: len(rs) == 1)
        assert dict(dlq.records[0].headers)["shopsync_dlq_reason"] == b"order_not_found"
        assert dlq.records[0].key == f"{SHOP_A}:gone".encode()
    async with TopicView(rig.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 1)
        assert order_ids(view) == {"a1"}


async def test_an_order_missing_the_contract_fields_is_dead_lettered(rig: Rig) -> None:
    rig.start()
    rig.tiktok.order_answers[SHOP_A] = lambda ids: [{"id": i, "status": "AWAITING_SHIPMENT"} for i in ids]
    await rig.push(SHOP_A, "a1")
    async with TopicView(rig.settings, DLQ) as view:
        await view.until(lambda rs: len(rs) == 1)
        reason = dict(view.records[0].headers)["shopsync_dlq_reason"]
        assert reason.startswith(b"malformed_order: update_time is required")


async def test_a_store_unlinked_while_its_orders_wait_skips_them_without_an_api_call(rig: Rig) -> None:
    rig.start()
    rig.worker.table.stores[SHOP_A].status = "deauthorized"
    await rig.push(SHOP_A, "a1")
    async with TopicView(rig.settings, ORDERS_SKIPPED) as view:
        await view.until(lambda rs: len(rs) == 1)
        assert view.values()[0]["reasons"] == ["store:deauthorized"]
    assert rig.tiktok.order_calls == []


async def test_consumer_lag_is_reported_and_returns_to_zero(rig: Rig) -> None:
    rig.start()
    last = await rig.push(SHOP_A, "a1")
    await rig.until_committed(last + 1)
    labels = {"group": topic_name(GROUP, rig.settings.shopsync_topic_prefix),
              "topic": topic_name(TIKTOK_WEBHOOKS, rig.settings.shopsync_topic_prefix)}
    await eventually(lambda: rig.metrics.registry.get_sample_value("kafka_consumer_lag", labels) == 0, within=10,
                     what="the lag back at 0")
    assert rig.metrics.accepted._value.get() == 1


# ---- the offset ledger (pure) ---------------------------------------------------------------------------------
TP0, TP1 = TopicPartition("t", 0), TopicPartition("t", 1)


def test_ledger_commits_up_to_the_oldest_unfinished_record_per_partition() -> None:
    ledger = OffsetLedger()
    for offset in (5, 6, 7):
        ledger.begin(TP0, offset)
    ledger.begin(TP1, 0)
    ledger.finish(TP0, 6)
    ledger.finish(TP0, 7)
    ledger.finish(TP1, 0)
    assert ledger.commit_points() == {TP0: 5, TP1: 1}
    assert ledger.in_flight() == 1
    ledger.finish(TP0, 5)
    assert ledger.commit_points() == {TP0: 8, TP1: 1} and ledger.in_flight() == 0


def test_ledger_redelivered_records_are_unfinished_again() -> None:
    ledger = OffsetLedger()
    ledger.begin(TP0, 3)
    ledger.finish(TP0, 3)
    ledger.begin(TP0, 2)  # redelivered after a rebalance
    assert ledger.commit_points() == {TP0: 2}


async def test_a_late_retry_in_the_same_batch_does_not_skip_an_order_its_newer_event_qualifies(rig: Rig) -> None:
    await rig.push(SHOP_A, "a1", status="AWAITING_SHIPMENT", update_time=1_600_000_200)
    last = await rig.push(SHOP_A, "a1", status="ON_HOLD", update_time=1_600_000_100)  # TikTok's late retry
    rig.start()  # both records in the worker's first batch
    await rig.until_committed(last + 1)
    async with TopicView(rig.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 1)
        assert view.values()[0]["lifecycle"] == "active"
    assert rig.tiktok.order_calls == [(SHOP_A, ["a1"])]
    assert await everything(rig.settings, ORDERS_SKIPPED) == []


async def test_an_event_older_than_the_decided_version_is_counted_stale_and_changes_nothing(rig: Rig) -> None:
    rig.start()
    await rig.push(SHOP_A, "a1")
    async with TopicView(rig.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 1)
        version = view.values()[0]["order_version"]
    last = await rig.push(SHOP_A, "a1", status="ON_HOLD", update_time=version - 60)
    await rig.until_committed(last + 1)
    assert rig.metrics.stale.labels(type="1")._value.get() == 1
    assert len(rig.tiktok.order_calls) == 1  # no API call for the stale event
    assert await everything(rig.settings, ORDERS_SKIPPED) == []


async def test_a_package_update_re_reads_every_order_it_names(rig: Rig) -> None:
    rig.start()
    offset = await rig.send(SHOP_A, SHOP_A, {
        "type": 4, "shop_id": SHOP_A, "tts_notification_id": "n-4", "timestamp": 1, "data": {
            "sc_type": "COMBINE", "role_type": "ROLE_SELLER", "update_time": next(UPDATE_TIMES),
            "package_list": [{"package_id": "p1", "order_id_list": ["a1", "a2"]},
                             {"package_id": "p2", "order_id_list": ["a3"]}]}})
    await rig.until_committed(offset + 1)
    assert sorted(i for _, ids in rig.tiktok.order_calls for i in ids) == ["a1", "a2", "a3"]
    async with TopicView(rig.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 3)
        assert order_ids(view) == {"a1", "a2", "a3"}


async def test_the_same_notification_delivered_three_times_is_acted_on_once(rig: Rig) -> None:
    rig.start()
    for _ in range(3):  # TikTok timed out waiting for our 200 and pushed again
        last = await rig.push(SHOP_A, "a1", notification_id="n-again")
        await rig.until_committed(last + 1)  # the first is finished before the copies arrive
    assert rig.tiktok.order_calls == [(SHOP_A, ["a1"])]
    assert rig.metrics.duplicates.labels(type="1")._value.get() == 2
    stale = await rig.push(SHOP_A, "a1", status="UNPAID", update_time=1, notification_id="n-again")
    await rig.until_committed(stale + 1)
    assert len(rig.tiktok.order_calls) == 1


async def test_a_restarted_worker_still_knows_the_notifications_its_group_finished(rig: Rig) -> None:
    rig.start()
    last = await rig.push(SHOP_A, "a1", notification_id="n-before-restart")
    await rig.until_committed(last + 1)
    window = NotificationWindow()
    tp = TopicPartition(topic_name(TIKTOK_WEBHOOKS, rig.settings.shopsync_topic_prefix), 0)
    assert await recent_notifications(rig.settings, {tp: last + 1}, window) == 1
    assert "n-before-restart" in window


async def test_a_lane_fetches_its_next_orders_while_the_last_batch_awaits_acknowledgement(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The acknowledgement of a batch overlaps the next Get Order Detail call, yet a record is committed only once
    its outputs are acknowledged."""
    released, flushes, flush = asyncio.Event(), [], rig.worker.outputs.flush

    async def held_flush() -> None:
        if rig.worker.outputs.accepted_before(f"{SHOP_A}:a1") and not flushes:  # the lane acknowledging a1
            flushes.append(1)
            await released.wait()
        await flush()

    monkeypatch.setattr(rig.worker.outputs, "flush", held_flush)
    rig.tiktok.order_answers[SHOP_A] = busy = Storm()
    rig.worker.lanes_per_shop = 1  # a2 in a1's lane
    rig.start()
    try:
        first = await rig.push(SHOP_A, "a1")
        await eventually(lambda: rig.tiktok.order_calls, within=20, what="a1 being fetched")
        last = await rig.push(SHOP_A, "a2")
        await eventually(lambda: rig.worker.ledger.in_flight() >= 2, within=20, what="a2 waiting behind a1's fetch")
        busy.lift()
        await eventually(lambda: flushes, within=20, what="a1 decided, its acknowledgement awaited")
        await eventually(lambda: len(rig.tiktok.order_calls) == 2, within=20,
                         what="a2 fetched while a1's acknowledgement is held")
        assert rig.tiktok.order_calls == [(SHOP_A, ["a1"]), (SHOP_A, ["a2"])]
        assert await rig.committed() in (None, first)  # neither record is committed before a1's outputs are acked
    finally:
        released.set()
    await rig.until_committed(last + 1)


# ---- several lanes per shop ---------------------------------------------------------------------------------
class Held:
    """Get Order Detail answers at once, except for calls naming an order in `held`, which wait for `release`;
    records the most calls naming one order at the same time."""

    def __init__(self, *held: str) -> None:
        self.held, self.released = set(held), asyncio.Event()
        self.naming: dict[str, int] = {}
        self.most_at_once = 0

    async def __call__(self, ids: list[str]) -> list[dict[str, Any]]:
        for i in ids:
            self.naming[i] = self.naming.get(i, 0) + 1
            self.most_at_once = max(self.most_at_once, self.naming[i])
        try:
            if self.held & set(ids):
                await self.released.wait()
            return every_order_found(ids)
        finally:
            for i in ids:
                self.naming[i] -= 1


def other_lane(order_id: str, lanes: int) -> str:
    """An order id in another lane of SHOP_A than `order_id`'s."""
    return next(f"a{n}" for n in range(2, 100) if lane_of(SHOP_A, f"a{n}", lanes) != lane_of(SHOP_A, order_id, lanes))


async def test_a_shops_orders_in_another_lane_are_fetched_and_published_while_one_lane_waits(rig: Rig) -> None:
    """Two lanes of one shop work at once; the offset is still not committed past the waiting lane's record."""
    rig.worker.lanes_per_shop = 4
    rig.tiktok.order_answers[SHOP_A] = held = Held("a1")
    rig.start()
    stuck = await rig.push(SHOP_A, "a1")
    await eventually(lambda: rig.tiktok.order_calls, within=20, what="a1 being fetched")
    second = other_lane("a1", 4)
    last = await rig.push(SHOP_A, second)
    async with TopicView(rig.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 1)
        assert order_ids(view) == {second}  # published while a1's fetch is still held
        await rig.worker.commit()
        assert await rig.committed() in (None, stuck)  # never past a1's unfinished record
        held.released.set()
        await view.until(lambda rs: len(rs) == 2)
    await rig.until_committed(last + 1)
    assert rig.tiktok.order_calls == [(SHOP_A, ["a1"]), (SHOP_A, [second])]


async def test_an_orders_newer_events_wait_for_its_own_lane_and_are_published_in_order(rig: Rig) -> None:
    """However many lanes a shop has, one order is never fetched twice at once nor published older after newer."""
    rig.worker.lanes_per_shop = 4
    rig.tiktok.order_answers[SHOP_A] = held = Held("a1")
    rig.start()
    await rig.push(SHOP_A, "a1")
    await eventually(lambda: rig.tiktok.order_calls, within=20, what="a1 being fetched")
    second = other_lane("a1", 4)
    await rig.push(SHOP_A, "a1", status="ON_HOLD")  # newer: waits in a1's lane behind its fetch
    last = await rig.push(SHOP_A, second)
    async with TopicView(rig.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 1)
        assert order_ids(view) == {second}
        assert rig.tiktok.order_calls == [(SHOP_A, ["a1"]), (SHOP_A, [second])]  # a1 not asked for again yet
        held.released.set()
        await rig.until_committed(last + 1)
        versions = [v["order_version"] for v in view.values() if v["order_id"] == "a1"]
    assert rig.tiktok.order_calls[2:] == [(SHOP_A, ["a1"])]  # the newer event: one more fetch, after the first
    assert held.most_at_once == 1
    assert versions == sorted(versions)


def test_an_orders_lane_is_the_same_for_every_event_and_the_lanes_share_the_shops_orders() -> None:
    lanes = {lane_of(SHOP_A, f"o{n}", 4) for n in range(200)}
    assert lanes == {(SHOP_A, n) for n in range(4)}
    assert all(lane_of(SHOP_A, "o7", 4) == lane_of(SHOP_A, "o7", 4) for _ in range(3))
    assert lane_of(SHOP_A, "o7", 1) == (SHOP_A, 0)


async def test_the_lanes_of_a_shop_share_its_rate_limit(rig: Rig) -> None:
    """Calls from all of a shop's lanes take turns in the client's one per-shop limiter: the waits it asks for are
    spaced one interval apart, as for calls from a single lane."""
    waits: list[float] = []

    async def record(seconds: float) -> None:  # the limiter's wait, not slept: the calls go out at once
        waits.append(seconds)

    def answer(request: httpx.Request) -> httpx.Response:
        ids = request.url.params["ids"].split(",")
        return httpx.Response(200, json={"code": 0, "message": "ok", "request_id": "r",
                                         "data": {"orders": every_order_found(ids)}})

    client = TikTokClient(app_key="k", app_secret="s", api_base="http://tt", auth_base="http://auth", qps=1.0,
                          transport=httpx.MockTransport(answer), sleep=record)
    rig.worker.fetcher.client = client
    rig.worker.lanes_per_shop = 4
    orders = [f"a{n}" for n in range(12)]
    last = [await rig.push(SHOP_A, order_id) for order_id in orders][-1]
    rig.start()
    try:
        await rig.until_committed(last + 1)
    finally:
        await client.aclose()
    calls = rig.metrics.api_calls.labels(call="get_order_detail")._value.get()
    assert calls >= 2 and len(waits) == calls - 1  # every call after the first waited for its slot
    interval = 1 / PACING
    assert sorted(waits) == pytest.approx([n * interval for n in range(1, len(waits) + 1)], abs=0.3)

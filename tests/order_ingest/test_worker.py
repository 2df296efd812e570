"""The worker against the real broker with a scripted TikTok client: lanes per shop, commits, the DLQ."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

from services.order_ingest import worker as worker_module
from services.order_ingest.fetch import OrderFetcher
from services.order_ingest.ledger import OffsetLedger
from services.order_ingest.metrics import IngestMetrics
from services.order_ingest.outputs import OrderOutputs
from services.order_ingest.service import GROUP
from services.order_ingest.worker import IngestWorker
from shared.dedupe import NotificationWindow, recent_notifications
from shared.kafka import create_consumer, create_producer
from shared.settings import Settings
from shared.stores.crypto import TokenCipher, generate_key
from shared.stores.model import LINKED, StoreRecord
from shared.stores.table import StoreTable, StoreWriter
from shared.stores.tokens import TokenKeeper
from shared.tiktok.errors import NotFound, PermissionDenied, RateLimited
from shared.tiktok.models import ShopAuth
from shared.topics import DLQ, ORDERS_INGESTED, ORDERS_SKIPPED, TIKTOK_WEBHOOKS, topic_name
from tests.topicview import TopicView, everything

SHOP_A, SHOP_B = "1001", "1002"
Answer = Callable[[list[str]], list[dict[str, Any]]]
_versions = itertools.count(1_700_000_000)
_notifications = itertools.count(1)


def tiktok_order(order_id: str, **changes: Any) -> dict[str, Any]:
    order = {"id": order_id, "status": "AWAITING_SHIPMENT", "update_time": next(_versions), "warehouse_id": "w1",
             "shipping_type": "SELLER", "fulfillment_type": "FULFILLMENT_BY_SELLER",
             "line_items": [{"id": f"{order_id}-1", "sku_id": "k1", "seller_sku": "RED-L"}]}
    order.update(changes)
    return order


def found(ids: list[str]) -> list[dict[str, Any]]:
    return [tiktok_order(i) for i in ids]


@dataclass
class Storm:
    """429 on every call until lifted, then the orders."""

    raging: bool = True

    def __call__(self, ids: list[str]) -> list[dict[str, Any]]:
        if self.raging:
            raise RateLimited("too many requests", code=36009002, http_status=429)
        return found(ids)


@dataclass
class ScriptedTikTok:
    """Get Order Detail answered per shop by a function of the ids (which may raise); every call recorded."""

    answers: dict[str, Answer] = field(default_factory=dict)
    calls: list[tuple[str, list[str]]] = field(default_factory=list)

    async def get_order_detail(self, shop: ShopAuth, ids: list[str]) -> list[dict[str, Any]]:
        self.calls.append((shop.shop_id, list(ids)))
        return self.answers.get(shop.shop_id, found)(ids)


@dataclass
class Rig:
    settings: Settings
    tiktok: ScriptedTikTok
    worker: IngestWorker
    producer: AIOKafkaProducer
    metrics: IngestMetrics
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.worker.run(self.stop))

    async def push(self, shop_id: str, order_id: str, status: str | None = "AWAITING_SHIPMENT",
                   event_type: int = 1, update_time: int | None = None, notification_id: str | None = None) -> int:
        """A webhook record as the gateway writes it (dated now and a new notification unless told), on partition 0;
        its offset."""
        data = {"order_id": order_id, **({"order_status": status} if status else {}),
                "update_time": next(_versions) if update_time is None else update_time}
        value = orjson.dumps({"type": event_type, "shop_id": shop_id, "tts_notification_id": notification_id or f"n-{order_id}-{next(_notifications)}",
                              "timestamp": 1, "data": data})
        meta = await self.producer.send_and_wait(topic_name(TIKTOK_WEBHOOKS, self.settings.shopsync_topic_prefix),
                                                 value, key=f"{shop_id}:{order_id}".encode(), partition=0)
        return int(meta.offset)

    async def committed(self) -> int | None:
        tp = TopicPartition(topic_name(TIKTOK_WEBHOOKS, self.settings.shopsync_topic_prefix), 0)
        return await self.worker.consumer.committed(tp)

    async def until_committed(self, offset: int) -> None:
        async with asyncio.timeout(20):
            while await self.committed() != offset:
                await asyncio.sleep(0.05)


def linked(shop_id: str, cipher: TokenCipher) -> StoreRecord:
    return StoreRecord(nickname=f"Store {shop_id}", status=LINKED, shop_id=shop_id, shop_cipher="c",
                       access_token_enc=cipher.encrypt("TTP_access"), refresh_token_enc=cipher.encrypt("TTP_refresh"),
                       access_token_expires_at=4_000_000_000, refresh_token_expires_at=4_000_000_000)


@pytest.fixture
async def rig(settings: Settings) -> AsyncIterator[Rig]:
    cipher = TokenCipher(generate_key())
    table = StoreTable()
    table.stores = {shop: linked(shop, cipher) for shop in (SHOP_A, SHOP_B)}
    tiktok = ScriptedTikTok()
    producer = create_producer(settings)
    consumer = create_consumer(settings, topic_name(GROUP, settings.shopsync_topic_prefix), TIKTOK_WEBHOOKS)
    await producer.start()
    await consumer.start()
    metrics = IngestMetrics()
    writer = StoreWriter(producer, settings)
    tokens = TokenKeeper(table, writer, tiktok, cipher)  # type: ignore[arg-type]
    fetcher = OrderFetcher(table, tokens, tiktok, metrics, retry_base_s=0.05)  # type: ignore[arg-type]
    worker = IngestWorker(settings, consumer, producer, OrderOutputs(producer, settings), table, writer, fetcher,
                          metrics)
    rig = Rig(settings, tiktok, worker, producer, metrics)
    try:
        yield rig
    finally:
        rig.stop.set()
        if rig.task is not None:
            await rig.task
        await consumer.stop()
        await producer.stop()


def order_ids(view: TopicView) -> set[str]:
    return {v["order_id"] for v in view.values()}


async def test_a_shop_stuck_in_a_429_storm_holds_up_no_other_shop_and_is_not_committed(rig: Rig) -> None:
    rig.start()
    rig.tiktok.answers[SHOP_A] = storm = Storm()
    stuck = await rig.push(SHOP_A, "a1")
    last = await rig.push(SHOP_B, "b1")
    async with TopicView(rig.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 1)
        assert order_ids(view) == {"b1"}  # shop B's order went through while shop A was refused
        assert await rig.committed() in (None, stuck)  # nothing past shop A's unfinished record
        storm.raging = False
        await view.until(lambda rs: len(rs) == 2)
        assert order_ids(view) == {"a1", "b1"}
    await rig.until_committed(last + 1)


async def test_events_that_arrive_while_the_shop_is_busy_are_coalesced_into_one_fetch(rig: Rig) -> None:
    rig.start()
    rig.tiktok.answers[SHOP_A] = busy = Storm()
    await rig.push(SHOP_A, "a1")
    async with asyncio.timeout(20):
        while not rig.tiktok.calls:
            await asyncio.sleep(0.02)
    last = [await rig.push(SHOP_A, order_id) for order_id in ("a2", "a2", "a2", "a3")][-1]
    async with asyncio.timeout(20):
        while rig.worker.ledger.in_flight() < 5:  # all read and waiting behind a1's fetch
            await asyncio.sleep(0.02)
    busy.raging = False
    await rig.until_committed(last + 1)
    assert {tuple(ids) for _, ids in rig.tiktok.calls} == {("a1",), ("a2", "a3")}
    assert rig.tiktok.calls[-1] == (SHOP_A, ["a2", "a3"])  # three events for a2, one fetch
    async with TopicView(rig.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 3)
        assert order_ids(view) == {"a1", "a2", "a3"}


async def test_consumption_pauses_while_too_many_records_are_unfinished_and_resumes(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "MAX_IN_FLIGHT", 1)
    rig.start()
    rig.tiktok.answers[SHOP_A] = storm = Storm()
    last = [await rig.push(SHOP_A, order_id) for order_id in ("a1", "a2")][-1]
    async with asyncio.timeout(20):
        while not rig.worker.consumer.paused():
            await asyncio.sleep(0.02)
    storm.raging = False
    await rig.until_committed(last + 1)
    async with asyncio.timeout(20):
        while rig.worker.consumer.paused():
            await asyncio.sleep(0.02)


async def test_a_status_that_cannot_qualify_is_skipped_without_an_api_call(rig: Rig) -> None:
    rig.start()
    await rig.push(SHOP_A, "a1", status="UNPAID")
    async with TopicView(rig.settings, ORDERS_SKIPPED) as view:
        await view.until(lambda rs: len(rs) == 1)
        skip = view.values()[0]
    assert skip["reasons"] == ["status:UNPAID"] and skip["decided_from"] == "webhook"
    assert skip["notification_id"].startswith("n-a1-") and skip["store_nickname"] == f"Store {SHOP_A}"
    assert rig.tiktok.calls == []


async def test_permission_denied_sends_the_original_record_to_the_dlq_with_the_reason(rig: Rig) -> None:
    rig.start()
    def denied(ids: list[str]) -> list[dict[str, Any]]:
        raise PermissionDenied("no scope", code=105005, request_id="r-1")

    rig.tiktok.answers[SHOP_A] = denied
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
        return found(ids)

    rig.tiktok.answers[SHOP_A] = one_unknown
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
    rig.tiktok.answers[SHOP_A] = lambda ids: [{"id": i, "status": "AWAITING_SHIPMENT"} for i in ids]
    await rig.push(SHOP_A, "a1")
    async with TopicView(rig.settings, DLQ) as view:
        await view.until(lambda rs: len(rs) == 1)
        assert dict(view.records[0].headers)["shopsync_dlq_reason"].startswith(b"malformed_order: KeyError")


async def test_a_store_unlinked_while_its_orders_wait_skips_them_without_an_api_call(rig: Rig) -> None:
    rig.start()
    rig.worker.table.stores[SHOP_A].status = "deauthorized"
    await rig.push(SHOP_A, "a1")
    async with TopicView(rig.settings, ORDERS_SKIPPED) as view:
        await view.until(lambda rs: len(rs) == 1)
        assert view.values()[0]["reasons"] == ["store:deauthorized"]
    assert rig.tiktok.calls == []


async def test_consumer_lag_is_reported_and_returns_to_zero(rig: Rig) -> None:
    rig.start()
    last = await rig.push(SHOP_A, "a1")
    await rig.until_committed(last + 1)
    async with asyncio.timeout(10):
        while rig.metrics.lag._value.get() != 0:
            await asyncio.sleep(0.05)
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


async def test_an_upcoming_authorization_expiry_marks_the_store_and_keeps_it_working(rig: Rig) -> None:
    rig.start()
    value = orjson.dumps({"type": 7, "shop_id": SHOP_A, "tts_notification_id": "n-7", "timestamp": 1,
                          "data": {"message": "expires soon", "expiration_time": 1_900_000_000}})
    await rig.producer.send_and_wait(topic_name(TIKTOK_WEBHOOKS, rig.settings.shopsync_topic_prefix), value,
                                     key=SHOP_A.encode(), partition=0)
    async with asyncio.timeout(20):
        while (store := (await StoreTable().load(rig.settings)).stores.get(SHOP_A)) is None:
            await asyncio.sleep(0.05)
    assert store.status == "authorization_expiring" and store.authorization_expires_at == 1_900_000_000
    await rig.push(SHOP_A, "a1")
    async with TopicView(rig.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 1)  # still linked: orders keep flowing until it expires


async def test_a_late_retry_in_the_same_batch_does_not_skip_an_order_its_newer_event_qualifies(rig: Rig) -> None:
    await rig.push(SHOP_A, "a1", status="AWAITING_SHIPMENT", update_time=1_600_000_200)
    last = await rig.push(SHOP_A, "a1", status="ON_HOLD", update_time=1_600_000_100)  # TikTok's late retry
    rig.start()  # both records in the worker's first batch
    await rig.until_committed(last + 1)
    async with TopicView(rig.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 1)
        assert view.values()[0]["lifecycle"] == "active"
    assert rig.tiktok.calls == [(SHOP_A, ["a1"])]
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
    assert len(rig.tiktok.calls) == 1  # no API call for the stale event
    assert await everything(rig.settings, ORDERS_SKIPPED) == []


async def test_a_package_update_re_reads_every_order_it_names(rig: Rig) -> None:
    rig.start()
    value = orjson.dumps({"type": 4, "shop_id": SHOP_A, "tts_notification_id": "n-4", "timestamp": 1, "data": {
        "sc_type": "COMBINE", "role_type": "ROLE_SELLER", "update_time": next(_versions),
        "package_list": [{"package_id": "p1", "order_id_list": ["a1", "a2"]}, {"package_id": "p2",
                                                                              "order_id_list": ["a3"]}]}})
    meta = await rig.producer.send_and_wait(topic_name(TIKTOK_WEBHOOKS, rig.settings.shopsync_topic_prefix), value,
                                            key=SHOP_A.encode(), partition=0)
    await rig.until_committed(meta.offset + 1)
    assert sorted(i for _, ids in rig.tiktok.calls for i in ids) == ["a1", "a2", "a3"]
    async with TopicView(rig.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 3)
        assert order_ids(view) == {"a1", "a2", "a3"}


async def test_a_deauthorization_older_than_the_latest_authorization_changes_nothing(rig: Rig) -> None:
    rig.worker.table.stores[SHOP_A].authorized_at = 1_700_000_500  # the seller re-linked after deauthorizing
    rig.start()
    value = orjson.dumps({"type": 6, "shop_id": SHOP_A, "tts_notification_id": "n-6", "timestamp": 1_700_000_400,
                          "data": {"message": f"Shop_id {SHOP_A} is deauthorized"}})
    meta = await rig.producer.send_and_wait(topic_name(TIKTOK_WEBHOOKS, rig.settings.shopsync_topic_prefix), value,
                                            key=SHOP_A.encode(), partition=0)
    await rig.until_committed(meta.offset + 1)
    assert rig.worker.table.stores[SHOP_A].status == LINKED
    assert rig.metrics.stale.labels(type="6")._value.get() == 1
    last = await rig.push(SHOP_A, "a1")
    await rig.until_committed(last + 1)
    async with TopicView(rig.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 1)


async def test_the_same_notification_delivered_three_times_is_acted_on_once(rig: Rig) -> None:
    rig.start()
    for _ in range(3):  # TikTok timed out waiting for our 200 and pushed again
        last = await rig.push(SHOP_A, "a1", notification_id="n-again")
        await rig.until_committed(last + 1)  # the first is finished before the copies arrive
    assert rig.tiktok.calls == [(SHOP_A, ["a1"])]
    assert rig.metrics.duplicates.labels(type="1")._value.get() == 2
    stale = await rig.push(SHOP_A, "a1", status="UNPAID", update_time=1, notification_id="n-again")
    await rig.until_committed(stale + 1)
    assert len(rig.tiktok.calls) == 1


async def test_a_restarted_worker_still_knows_the_notifications_its_group_finished(rig: Rig) -> None:
    rig.start()
    last = await rig.push(SHOP_A, "a1", notification_id="n-before-restart")
    await rig.until_committed(last + 1)
    window = NotificationWindow()
    tp = TopicPartition(topic_name(TIKTOK_WEBHOOKS, rig.settings.shopsync_topic_prefix), 0)
    assert await recent_notifications(rig.settings, {tp: last + 1}, window) == 1
    assert "n-before-restart" in window

"""A store whose tokens do not decrypt hurts only that store: it is marked `needs_relink`, its orders are skipped
with that reason, every other shop keeps flowing; during a key rotation (`new,old`) stores under both keys work.
Against the real broker: the worker with a scripted TikTok, and the whole ingest with the sandbox and OAuth."""

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

from services.order_ingest.decide import store_reasons
from services.order_ingest.fetch import OrderFetcher
from services.order_ingest.metrics import IngestMetrics
from services.order_ingest.outputs import OrderOutputs
from services.order_ingest.service import GROUP
from services.order_ingest.worker import IngestWorker
from shared.kafka import create_consumer, create_producer
from shared.settings import Settings
from shared.stores.crypto import KEY_MISMATCH, TokenCipher, generate_key
from shared.stores.model import DEAUTHORIZED, LINKED, NEEDS_RELINK, StoreRecord
from shared.stores.table import StoreTable, StoreWriter
from shared.stores.tokens import TokenKeeper
from shared.tiktok.models import ShopAuth
from shared.topics import DLQ, ORDERS_INGESTED, ORDERS_SKIPPED, TIKTOK_WEBHOOKS, topic_name
from tests.conftest import MY_SHOP, US_SHOP
from tests.order_ingest.conftest import Harness, write_store
from tests.topicview import TopicView, everything

SHOP_A, SHOP_B = "1001", "1002"
OLD, NEW = generate_key(), generate_key()
_versions = itertools.count(1_700_000_000)


def tiktok_order(order_id: str) -> dict[str, Any]:
    return {"id": order_id, "status": "AWAITING_SHIPMENT", "update_time": next(_versions), "warehouse_id": "w1",
            "shipping_type": "SELLER", "fulfillment_type": "FULFILLMENT_BY_SELLER",
            "line_items": [{"id": f"{order_id}-1", "sku_id": "k1", "seller_sku": "RED-L"}]}


@dataclass
class ScriptedTikTok:
    """Get Order Detail answers every id it is asked for; the calls are recorded."""

    calls: list[tuple[str, list[str]]] = field(default_factory=list)

    async def get_order_detail(self, shop: ShopAuth, ids: list[str]) -> list[dict[str, Any]]:
        self.calls.append((shop.shop_id, list(ids)))
        return [tiktok_order(i) for i in ids]


@dataclass
class Rig:
    settings: Settings
    tiktok: ScriptedTikTok
    worker: IngestWorker
    producer: AIOKafkaProducer
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.worker.run(self.stop))

    async def push(self, shop_id: str, order_id: str) -> int:
        """An order webhook as the gateway writes it, on partition 0; its offset."""
        value = orjson.dumps({"type": 1, "shop_id": shop_id, "tts_notification_id": f"n-{order_id}", "timestamp": 1,
                              "data": {"order_id": order_id, "order_status": "AWAITING_SHIPMENT",
                                       "update_time": next(_versions)}})
        meta = await self.producer.send_and_wait(topic_name(TIKTOK_WEBHOOKS, self.settings.shopsync_topic_prefix),
                                                 value, key=f"{shop_id}:{order_id}".encode(), partition=0)
        return int(meta.offset)

    async def until_committed(self, offset: int) -> None:
        tp = TopicPartition(topic_name(TIKTOK_WEBHOOKS, self.settings.shopsync_topic_prefix), 0)
        async with asyncio.timeout(20):
            while await self.worker.consumer.committed(tp) != offset:
                assert self.task is None or not self.task.done(), "the worker stopped"
                await asyncio.sleep(0.05)


def linked(shop_id: str, key: str) -> StoreRecord:
    cipher = TokenCipher(key)
    return StoreRecord(nickname=f"Store {shop_id}", status=LINKED, shop_id=shop_id, shop_cipher="c",
                       access_token_enc=cipher.encrypt("TTP_access"), refresh_token_enc=cipher.encrypt("TTP_refresh"),
                       access_token_expires_at=4_000_000_000, refresh_token_expires_at=4_000_000_000)


RigFactory = Callable[[str, dict[str, str]], Rig]


@pytest.fixture
async def make_rig(settings: Settings) -> AsyncIterator[RigFactory]:
    """A worker whose SHOPSYNC_SECRET_KEY is `keys`, over stores {shop id: the key its tokens are encrypted with}."""
    producer = create_producer(settings)
    consumer = create_consumer(settings, topic_name(GROUP, settings.shopsync_topic_prefix), TIKTOK_WEBHOOKS)
    await producer.start()
    await consumer.start()
    rigs: list[Rig] = []

    def make(keys: str, stores: dict[str, str]) -> Rig:
        table = StoreTable()
        table.stores = {shop: linked(shop, key) for shop, key in stores.items()}
        tiktok, metrics, writer = ScriptedTikTok(), IngestMetrics(), StoreWriter(producer, settings)
        tokens = TokenKeeper(table, writer, tiktok, TokenCipher(keys))  # type: ignore[arg-type]
        fetcher = OrderFetcher(table, tokens, tiktok, metrics, retry_base_s=0.05)  # type: ignore[arg-type]
        worker = IngestWorker(settings, consumer, producer, OrderOutputs(producer, settings), table, writer,
                              fetcher, metrics)
        rigs.append(rig := Rig(settings, tiktok, worker, producer))
        return rig

    try:
        yield make
    finally:
        for rig in rigs:
            rig.stop.set()
            if rig.task is not None:
                await rig.task
        await consumer.stop()
        await producer.stop()


def order_ids(view: TopicView) -> set[str]:
    return {v["order_id"] for v in view.values()}


@pytest.mark.parametrize(("status", "reasons"), [(NEEDS_RELINK, ["store:needs_relink"]),
                                                 (DEAUTHORIZED, ["store:deauthorized"]), (LINKED, [])])
def test_a_store_marked_needs_relink_takes_no_orders(status: str, reasons: list[str]) -> None:
    store = linked(SHOP_A, NEW)
    store.status = status  # type: ignore[assignment]
    assert store_reasons(store) == reasons


async def test_a_store_encrypted_with_another_key_needs_relink_and_the_other_shop_keeps_flowing(
        make_rig: RigFactory) -> None:
    rig = make_rig(NEW, {SHOP_A: OLD, SHOP_B: NEW})
    rig.start()
    await rig.push(SHOP_A, "a1")
    await rig.push(SHOP_B, "b1")
    async with TopicView(rig.settings, ORDERS_SKIPPED) as skipped:
        await skipped.until(lambda rs: len(rs) == 1)
        assert [(v["order_id"], v["reasons"]) for v in skipped.values()] == [("a1", ["store:needs_relink"])]
    stores = (await StoreTable().load(rig.settings)).stores
    assert (stores[SHOP_A].status, stores[SHOP_A].status_reason) == (NEEDS_RELINK, KEY_MISMATCH)
    assert SHOP_B not in stores  # nothing written for the healthy store
    calls_after_mark = len(rig.tiktok.calls)
    last = [await rig.push(shop, order) for shop, order in ((SHOP_A, "a2"), (SHOP_B, "b2"))][-1]
    await rig.until_committed(last + 1)  # the bad store's records are finished too: no restart into them
    async with TopicView(rig.settings, ORDERS_INGESTED) as ingested:
        await ingested.until(lambda rs: len(rs) == 2)
        assert order_ids(ingested) == {"b1", "b2"}
    skips = {v["order_id"]: v["reasons"] for v in await everything(rig.settings, ORDERS_SKIPPED)}
    assert skips == {"a1": ["store:needs_relink"], "a2": ["store:needs_relink"]}
    assert [shop for shop, _ in rig.tiktok.calls[calls_after_mark:]] == [SHOP_B]  # no call for the marked store
    assert await everything(rig.settings, DLQ) == []


async def test_during_a_key_rotation_stores_under_the_old_and_the_new_key_are_ingested(make_rig: RigFactory) -> None:
    rig = make_rig(f"{NEW},{OLD}", {SHOP_A: OLD, SHOP_B: NEW})
    rig.start()
    await rig.push(SHOP_A, "a1")
    last = await rig.push(SHOP_B, "b1")
    await rig.until_committed(last + 1)
    async with TopicView(rig.settings, ORDERS_INGESTED) as ingested:
        await ingested.until(lambda rs: len(rs) == 2)
        assert order_ids(ingested) == {"a1", "b1"}
    assert await everything(rig.settings, ORDERS_SKIPPED) == []


async def until_status(harness: Harness, shop_id: str, status: str) -> StoreRecord:
    async with asyncio.timeout(30):
        while (store := (await harness.stores()).stores.get(shop_id)) is None or store.status != status:
            await asyncio.sleep(0.1)
    return store


async def test_the_ingest_skips_the_store_whose_key_changed_keeps_the_others_and_a_relink_heals_it(
        harness: Harness) -> None:
    assert (await harness.link("US store", "", shop_id=US_SHOP)).status_code == 200
    assert (await harness.link("MY store", "", shop_id=MY_SHOP)).status_code == 200
    bad = await until_status(harness, MY_SHOP, LINKED)
    other = TokenCipher(generate_key())  # as if this record was written under a key since replaced
    bad.access_token_enc, bad.refresh_token_enc = other.encrypt("TTP_a"), other.encrypt("TTP_r")
    await write_store(harness.settings, bad)
    await harness.start_ingest()
    us, my = await harness.create_order(shop_id=US_SHOP), await harness.create_order(shop_id=MY_SHOP)
    async with TopicView(harness.settings, ORDERS_SKIPPED) as skipped:
        await skipped.until(lambda rs: len(rs) >= 1)
        assert [(v["order_id"], v["reasons"]) for v in skipped.values()] == [(my["id"], ["store:needs_relink"])]
    marked = await until_status(harness, MY_SHOP, NEEDS_RELINK)
    assert marked.status_reason == KEY_MISMATCH
    later = await harness.create_order(shop_id=US_SHOP)
    async with TopicView(harness.settings, ORDERS_INGESTED) as ingested:
        await ingested.until(lambda rs: {us["id"], later["id"]} <= order_ids(ingested))
        assert harness.task is not None and not harness.task.done()  # the process never stopped
        assert (await harness.link("MY store", "", shop_id=MY_SHOP)).status_code == 200  # the seller relinks
        relinked = await until_status(harness, MY_SHOP, LINKED)
        assert relinked.status_reason == ""
        healed = await harness.create_order(shop_id=MY_SHOP)
        await ingested.until(lambda rs: healed["id"] in order_ids(ingested))

"""The consumer loops of store sync: `oms.shipments`, `oms.inventory` and TikTok's product/inventory webhooks.

Offsets are committed only after the records' outcomes are on `sync.results` (shipments) or after the flush that
pushed them (inventory, webhooks). Bad records go to the DLQ with a reason naming the field and never stop a loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition

from services.store_sync.catalog import CatalogKeeper
from services.store_sync.inventory import InventorySync
from services.store_sync.product_events import INVENTORY_STATUS_CHANGE, parse_product_event
from services.store_sync.records import BadRecord, parse_shipment, parse_stock
from services.store_sync.results import ResultWriter, SyncResult
from services.store_sync.retry import GaveUp, Interrupted, until_kafka_accepts, with_retries
from services.store_sync.shipments import ShipmentSyncer
from shared.dlq import send_to_dlq
from shared.kafka import commit_owned
from shared.logging import get_logger
from shared.settings import Settings
from shared.stores.table import StoreTable
from shared.stores.tokens import StoreUnavailable
from shared.tiktok.errors import TikTokError

log = get_logger("store_sync")


def _next_offsets(batches: dict[TopicPartition, list[ConsumerRecord]]) -> dict[TopicPartition, int]:
    return {tp: records[-1].offset + 1 for tp, records in batches.items() if records}


class ShipmentFeed:
    """`oms.shipments` → TikTok, one order at a time (shipments of different orders in parallel)."""

    def __init__(self, settings: Settings, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer,
                 syncer: ShipmentSyncer, writer: ResultWriter, stop: asyncio.Event) -> None:
        self.settings, self.consumer, self.producer = settings, consumer, producer
        self.syncer, self.writer, self.stop = syncer, writer, stop

    async def run(self) -> None:
        while not self.stop.is_set():
            batches = await self.consumer.getmany(timeout_ms=500)
            if not batches:
                continue
            by_key: dict[bytes | None, list[ConsumerRecord]] = {}
            for records in batches.values():
                for record in records:
                    by_key.setdefault(record.key, []).append(record)
            try:
                done = await asyncio.gather(*(self._in_order(rs) for rs in by_key.values()))
                results = [r for rs in done for r in rs]
                await until_kafka_accepts(lambda: self.writer.publish(results), stop=self.stop, what="results")
                offsets = _next_offsets(batches)
                await until_kafka_accepts(lambda: commit_owned(self.consumer, offsets), stop=self.stop, what="commit")
            except Interrupted:
                log.info("shipments_interrupted")  # uncommitted: redone after the restart
                return

    async def _in_order(self, records: list[ConsumerRecord]) -> list[SyncResult]:
        return [r for record in records if (r := await self._one(record)) is not None]

    async def _one(self, record: ConsumerRecord) -> SyncResult | None:
        try:
            shipment = parse_shipment(record.value)
        except BadRecord as exc:
            reason = exc.reason
            log.warning("shipment_dead_lettered", reason=reason, offset=record.offset)
            await until_kafka_accepts(lambda: send_to_dlq(self.producer, self.settings, record, reason, time.time()),
                                      stop=self.stop, what="dlq")
            return None
        try:
            result, attempts = await until_kafka_accepts(lambda: with_retries(  # a token refresh writes to Kafka
                lambda: self.syncer.sync(shipment), max_attempts=self.settings.shopsync_sync_max_attempts,
                base_s=self.settings.shopsync_sync_retry_base_s, stop=self.stop, what="shipment"),
                stop=self.stop, what="token_refresh")
        except GaveUp as exc:
            return SyncResult("shipment", shipment.key, "failed", "shipment:tiktok_unavailable",
                              f"TikTok kept failing: {exc.last.message}", exc.last.code, exc.attempts,
                              ids={"shipment_id": shipment.shipment_id, "shop_id": shipment.shop_id,
                                   "order_id": shipment.order_id, "tracking_number": shipment.tracking_number})
        result.attempts = attempts
        log.info("shipment_synced", order_id=shipment.order_id, shipment_id=shipment.shipment_id,
                 status=result.status, reason=result.reason)
        return result


class InventoryFeed:
    """`oms.inventory` → the inventory sync's pending quantities; commits once they are pushed."""

    def __init__(self, settings: Settings, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer,
                 inventory: InventorySync, stop: asyncio.Event) -> None:
        self.settings, self.consumer, self.producer = settings, consumer, producer
        self.inventory, self.stop = inventory, stop

    async def run(self) -> None:
        while not self.stop.is_set():
            batches = await self.consumer.getmany(timeout_ms=200)
            if not batches:
                continue
            for records in batches.values():
                for record in records:
                    try:
                        self.inventory.offer(parse_stock(record.value))
                    except BadRecord as exc:
                        log.warning("inventory_dead_lettered", reason=exc.reason, offset=record.offset)
                        try:
                            await until_kafka_accepts(lambda r=record, e=exc: send_to_dlq(
                                self.producer, self.settings, r, e.reason, time.time()), stop=self.stop, what="dlq")
                        except Interrupted:
                            return
            self.inventory.after_flush(_committer(self.consumer, _next_offsets(batches), self.stop))


class ProductWebhookFeed:
    """Product webhooks (5/15/16) refresh the catalog; INVENTORY_STATUS_CHANGE (27) re-checks one SKU."""

    def __init__(self, consumer: AIOKafkaConsumer, table: StoreTable, keeper: CatalogKeeper,
                 inventory: InventorySync, settings: Settings, stop: asyncio.Event) -> None:
        self.consumer, self.table, self.keeper, self.inventory = consumer, table, keeper, inventory
        self.settings, self.stop = settings, stop

    async def run(self) -> None:
        while not self.stop.is_set():
            batches = await self.consumer.getmany(timeout_ms=500)
            if not batches:
                continue
            try:
                for records in batches.values():
                    for record in records:
                        await self._one(record.value)
            except Interrupted:
                return
            self.inventory.after_flush(_committer(self.consumer, _next_offsets(batches), self.stop))

    async def _one(self, value: bytes | None) -> None:
        event = parse_product_event(value)
        if event is None:
            return  # not a product or inventory event (the gateway validated the envelope)
        shop_id, product_id = event.shop_id, event.product_id
        store = self.table.stores.get(shop_id)
        if store is None or not store.is_active or not store.auto_sync_inventory:
            return
        if event.type == INVENTORY_STATUS_CHANGE:
            seller_sku = self.inventory.catalog.seller_sku_of(shop_id, str(event.sku_id))
            if seller_sku is None:
                await self._refresh(shop_id, product_id, None)
                seller_sku = self.inventory.catalog.seller_sku_of(shop_id, str(event.sku_id))
            if seller_sku is not None and self.inventory.recheck(shop_id, seller_sku, "inventory_webhook"):
                log.info("inventory_recheck", shop_id=shop_id, seller_sku=seller_sku)
            return
        status = {product_id: event.status} if event.status else None
        for key in await self._refresh(shop_id, product_id, status):
            self.inventory.recheck(shop_id, key.partition(":")[2], "catalog_change")

    async def _refresh(self, shop_id: str, product_id: str, status: dict[str, str] | None) -> set[str]:
        try:
            changed, _ = await until_kafka_accepts(lambda: with_retries(
                lambda: self.keeper.refresh_products(shop_id, [product_id], status),
                max_attempts=self.settings.shopsync_sync_max_attempts, base_s=self.settings.shopsync_sync_retry_base_s,
                stop=self.stop, what="catalog_product"), stop=self.stop, what="catalog")
            return changed
        except (GaveUp, TikTokError, StoreUnavailable) as exc:
            log.error("catalog_product_refresh_failed", shop_id=shop_id, product_id=product_id, error=str(exc))
            return set()


async def refresh_catalogs_forever(table: StoreTable, keeper: CatalogKeeper, inventory: InventorySync,
                                   settings: Settings, stop: asyncio.Event) -> None:
    """Full refresh of every store with inventory sync on: at start, then every SHOPSYNC_CATALOG_REFRESH_S."""
    while not stop.is_set():
        for shop_id, store in list(table.stores.items()):
            last = keeper.refreshed_at.get(shop_id)
            if not store.is_active or not store.auto_sync_inventory or (
                    last is not None and time.monotonic() - last < settings.shopsync_catalog_refresh_s):
                continue
            try:
                mapped = inventory.mapped_seller_skus(shop_id)
                changed, _ = await with_retries(lambda s=shop_id, m=mapped: keeper.refresh_shop(s, m), stop=stop,
                                                what="catalog",
                                                max_attempts=settings.shopsync_sync_max_attempts,
                                                base_s=settings.shopsync_sync_retry_base_s)
            except Interrupted:
                return
            except (GaveUp, TikTokError, StoreUnavailable, KafkaError) as exc:
                log.error("catalog_refresh_failed", shop_id=shop_id, error=str(exc))
                keeper.refreshed_at[shop_id] = time.monotonic() - settings.shopsync_catalog_refresh_s + 60.0
                continue  # try again in a minute, not in a hot loop
            for key in changed:
                inventory.recheck(shop_id, key.partition(":")[2], "catalog_change")
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass


def _committer(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int],
               stop: asyncio.Event) -> Callable[[], Awaitable[Any]]:
    async def commit() -> None:
        if offsets:
            await until_kafka_accepts(lambda: commit_owned(consumer, offsets), stop=stop, what="commit")
    return commit

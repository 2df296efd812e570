"""The consumer loops of store sync: `oms.shipments`, `oms.inventory` and TikTok's product/inventory webhooks.

Offsets are committed only after the records' outcomes are on `sync.results` (shipments) or after the flush that
pushed them (inventory, webhooks). Bad records go to the DLQ with a reason naming the field and never stop a loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from prometheus_client import Counter

from services.store_sync.catalog import CatalogKeeper
from services.store_sync.event_order import NewestActed
from services.store_sync.inventory import InventorySync
from services.store_sync.product_events import ProductEvent, product_event
from services.store_sync.records import BadRecord, parse_shipment, parse_stock
from services.store_sync.results import ResultWriter, SyncResult
from services.store_sync.retry import UNAVAILABLE, Interrupted, until_kafka_accepts
from services.store_sync.shipments import ShipmentSyncer
from shared.dlq import send_to_dlq
from shared.kafka import commit_owned
from shared.logging import get_logger
from shared.settings import Settings
from shared.stores.table import StoreTable
from shared.stores.tokens import StoreUnavailable
from shared.tiktok.errors import MalformedPayload, TikTokError
from shared.tiktok.event_types import INVENTORY_STATUS_CHANGE, PRODUCT_EVENTS
from shared.tiktok.retry import counting_calls
from shared.tiktok.webhooks import parse_webhook

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
                await until_kafka_accepts(partial(self.writer.publish, results), stop=self.stop, what="results")
                await until_kafka_accepts(partial(commit_owned, self.consumer, _next_offsets(batches)),
                                          stop=self.stop, what="commit")
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
            with counting_calls() as calls:  # a token refresh writes to Kafka: redo the shipment once it is back
                result = await until_kafka_accepts(lambda: self.syncer.sync(shipment), stop=self.stop,
                                                   what="token_refresh")
        except UNAVAILABLE as exc:  # the client's retries are spent
            return SyncResult("shipment", shipment.key, "failed", "shipment:tiktok_unavailable",
                              f"TikTok kept failing: {exc.message}", exc.code, calls.calls,
                              ids={"shipment_id": shipment.shipment_id, "shop_id": shipment.shop_id,
                                   "order_id": shipment.order_id, "tracking_number": shipment.tracking_number})
        result.attempts = calls.calls
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
                            await until_kafka_accepts(partial(send_to_dlq, self.producer, self.settings, record,
                                                              exc.reason, time.time()), stop=self.stop, what="dlq")
                        except Interrupted:
                            return
            self.inventory.after_flush(_committer(self.consumer, _next_offsets(batches), self.stop))


class ProductWebhookFeed:
    """Product webhooks (5/15/16) re-read their product; INVENTORY_STATUS_CHANGE (27) re-checks one SKU.

    Events are ordered by TikTok's `update_time` (`event_order`): one older than the newest already acted on for
    its product (its SKU for a 27) is counted in `webhooks_stale_total`, logged, and changes nothing.
    """

    def __init__(self, consumer: AIOKafkaConsumer, table: StoreTable, keeper: CatalogKeeper,
                 inventory: InventorySync, settings: Settings, stop: asyncio.Event, stale: Counter) -> None:
        self.consumer, self.table, self.keeper, self.inventory = consumer, table, keeper, inventory
        self.settings, self.stop, self.stale = settings, stop, stale
        self.acted = NewestActed()

    async def run(self) -> None:
        while not self.stop.is_set():
            batches = await self.consumer.getmany(timeout_ms=500)
            if not batches:
                continue
            try:
                for records in batches.values():
                    for record in records:
                        await self.act_on(record.value)
            except Interrupted:
                return
            self.inventory.after_flush(_committer(self.consumer, _next_offsets(batches), self.stop))

    async def act_on(self, value: bytes | None) -> None:
        """One webhook record: re-read what it names, unless it is stale or its store does not sync stock. A
        product or inventory webhook the parser refuses is logged with the field and changes nothing (the next
        catalog refresh reads the product anyway)."""
        try:
            event = product_event(parse_webhook(value or b""))
        except MalformedPayload as exc:
            if exc.event_type in PRODUCT_EVENTS or exc.event_type == INVENTORY_STATUS_CHANGE:
                log.warning("webhook_malformed", type=exc.event_type, field=exc.field, reason=exc.reason)
            return
        if event is None:
            return  # not a product or inventory event
        store = self.table.stores.get(event.shop_id)
        if store is None or not store.is_active or not store.auto_sync_inventory:
            return
        key = event.ordering_key
        if self.acted.is_stale(key, event.update_time):
            self.stale.labels(type=str(event.type)).inc()
            log.info("webhook_stale", type=event.type, shop_id=event.shop_id, product_id=event.product_id,
                     sku_id=event.sku_id, update_time=event.update_time, newest_acted=self.acted.get(key))
            return
        done = await (self._recheck_sku(event) if event.type == INVENTORY_STATUS_CHANGE else self._reread(event))
        if done:
            self.acted.acted(key, event.update_time)

    async def _reread(self, event: ProductEvent) -> bool:
        """Get Product, then push stock again to the seller SKUs whose catalog entry changed."""
        changed = await self._refresh(event.shop_id, event.product_id)
        if changed is None:
            return False
        log.info("product_reread", type=event.type, shop_id=event.shop_id, product_id=event.product_id,
                 audit_event=event.audit_event, changed=len(changed))
        for key in changed:
            self.inventory.recheck(event.shop_id, key.partition(":")[2], "catalog_change")
        return True

    async def _recheck_sku(self, event: ProductEvent) -> bool:
        shop_id = event.shop_id
        seller_sku = self.inventory.catalog.seller_sku_of(shop_id, str(event.sku_id))
        if seller_sku is None:
            if await self._refresh(shop_id, event.product_id) is None:
                return False
            seller_sku = self.inventory.catalog.seller_sku_of(shop_id, str(event.sku_id))
        if seller_sku is not None and self.inventory.recheck(shop_id, seller_sku, "inventory_webhook"):
            log.info("inventory_recheck", shop_id=shop_id, seller_sku=seller_sku)
        return True

    async def _refresh(self, shop_id: str, product_id: str) -> set[str] | None:
        """The catalog keys the product's re-read changed; None when TikTok could not be read."""
        try:
            changed = await until_kafka_accepts(lambda: self.keeper.refresh_products(shop_id, [product_id]),
                                                stop=self.stop, what="catalog")
            return changed
        except (TikTokError, StoreUnavailable) as exc:
            log.error("catalog_product_refresh_failed", shop_id=shop_id, product_id=product_id, error=str(exc))
            return None


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
                changed = await keeper.refresh_shop(shop_id, mapped)
            except Interrupted:
                return
            except (TikTokError, StoreUnavailable, KafkaError) as exc:
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

"""The work of the active store-sync instance (the one holding the lease, `lease.py`): stores, mappings, catalog,
the three feeds and inventory sync, from loading their state to stopping their consumers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter

from services.store_sync.carriers import CarrierBook
from services.store_sync.catalog import Catalog, CatalogKeeper
from services.store_sync.feeds import InventoryFeed, ProductWebhookFeed, ShipmentFeed, refresh_catalogs_forever
from services.store_sync.inventory import InventorySync
from services.store_sync.records import BadRecord, parse_stock
from services.store_sync.results import ResultWriter
from services.store_sync.shipments import ShipmentSyncer
from shared.kafka import read_to_end
from shared.logging import get_logger
from shared.mapping_table import MappingTable
from shared.mappings import split_mapping_key
from shared.producer import ManagedProducer
from shared.settings import Settings
from shared.stores.commands import StoreCommands
from shared.stores.crypto import TokenCipher
from shared.stores.table import StoreTable
from shared.stores.tokens import TokenKeeper
from shared.tiktok.client import TikTokClient
from shared.topics import OMS_INVENTORY, SYNC_RESULTS

log = get_logger("store_sync")


@dataclass(frozen=True)
class StoreSyncMetrics:
    """Store sync's own counters, kept by the process across activations."""

    stale_webhooks: Counter
    results: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry) -> StoreSyncMetrics:
        return cls(Counter("webhooks_stale_total", "Product/inventory webhooks older than the newest already acted "
                           "on (by data.update_time), dropped without an API call", ["type"], registry=registry),
                   Counter("store_sync_results_total", "Outcomes published on sync.results, by kind (shipment, "
                           "inventory), status (applied, failed, skipped) and reason", ["kind", "status", "reason"],
                           registry=registry))


class WorkEnded(Exception):
    """A part of the work ended while the instance still holds the lease (a future it awaited was cancelled under
    it, or it returned): the activation starts again rather than going on without it."""


async def until_stopped(name: str, work: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """Run `work`; WorkEnded if it ends before `stop` is set, or is cancelled by anything but its task's cancel."""
    try:
        await work
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        raise WorkEnded(f"{name} was cancelled") from None
    if not stop.is_set():
        raise WorkEnded(f"{name} returned")


class ActiveSync:
    """The work of the instance holding the store-sync lease: the state, the three feeds, the catalog and inventory
    sync, until `stop` is set. `async with` loads the state and starts (and stops) the consumers; the producer and
    the TikTok client are the process's (`StoreSyncService`), started before and stopped after."""

    def __init__(self, settings: Settings, *, producer: ManagedProducer, shipments: AIOKafkaConsumer,
                 inventory: AIOKafkaConsumer, webhooks: AIOKafkaConsumer, tiktok: TikTokClient,
                 metrics: StoreSyncMetrics, cipher: TokenCipher, stop: asyncio.Event) -> None:
        self.settings = settings
        self.producer = producer
        self.metrics = metrics
        self._consumers = (shipments, inventory, webhooks)
        self._stop = stop
        self.table = StoreTable()
        self._commands = StoreCommands(settings, producer, requested_by="store_sync")  # refreshes: the owner's
        self.tokens = TokenKeeper(self.table, self._commands, tiktok, cipher)
        tiktok.on_token_expired = self.tokens.on_token_expired
        self.mappings = MappingTable()
        self.catalog = Catalog()
        self.keeper = CatalogKeeper(self.catalog, tiktok, self.tokens, producer, settings)
        self.writer = ResultWriter(producer, settings, metrics.results)
        self.syncer = ShipmentSyncer(self.table, self.tokens, tiktok, CarrierBook(tiktok))
        self.inventory = InventorySync(settings, self.table, self.mappings.mappings, self.catalog, self.keeper,
                                       self.tokens, tiktok, self.writer, self._stop)

    async def __aenter__(self) -> ActiveSync:
        settings = self.settings
        try:
            await self.table.load(settings)
            await self.mappings.load(settings)
            await self.catalog.load(settings)
            await _restore_shipments(settings, self.syncer)
            await _restore_levels(settings, self.inventory)
            await asyncio.gather(*(consumer.start() for consumer in self._consumers))  # each joins its group
        except BaseException:
            await self._close()
            raise
        log.info("store_sync_active", stores=len(self.table.stores))
        return self

    async def run(self) -> None:
        """Push shipments and stock levels to TikTok until `stop` is set."""
        settings, stop, inventory = self.settings, self._stop, self.inventory
        shipments, levels, webhooks = self._consumers

        async def mapping_changed(key: str) -> None:
            inventory.recheck(*split_mapping_key(key), "mapping_change")

        work: dict[str, Coroutine[Any, Any, None]] = {
            "stores": self.table.follow(settings, stop),
            "mappings": self.mappings.follow(settings, stop, mapping_changed),
            "inventory": inventory.run(),
            "catalog": refresh_catalogs_forever(self.table, self.keeper, inventory, settings, stop),
            "shipment_feed": ShipmentFeed(settings, shipments, self.producer, self.syncer, self.writer, stop).run(),
            "inventory_feed": InventoryFeed(settings, levels, self.producer, inventory, stop).run(),
            "webhook_feed": ProductWebhookFeed(webhooks, self.table, self.keeper, inventory, settings, stop,
                                               self.metrics.stale_webhooks).run(),
        }
        async with self._commands, asyncio.TaskGroup() as tasks:
            for name, coroutine in work.items():
                tasks.create_task(until_stopped(name, coroutine, stop))

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await self._close()
        log.info("store_sync_inactive")

    async def _close(self) -> None:
        for consumer in self._consumers:
            with contextlib.suppress(KafkaError):
                await consumer.stop()


async def _restore_shipments(settings: Settings, syncer: ShipmentSyncer) -> None:
    """Shipments applied before a restart, so a redelivered shipment_id is recognised without a call."""
    async for record in read_to_end(settings, SYNC_RESULTS):
        try:
            doc = orjson.loads(record.value or b"{}")
        except orjson.JSONDecodeError:
            continue
        if doc.get("kind") == "shipment" and doc.get("status") == "applied" and doc.get("shipment_id"):
            syncer.remember(str(doc["shipment_id"]), str(doc.get("tracking_number", "")))


async def _restore_levels(settings: Settings, inventory: InventorySync) -> None:
    """The OMS's last quantity per product (for webhook-27 corrections and new mappings)."""
    async for record in read_to_end(settings, OMS_INVENTORY):
        try:
            inventory.restore(parse_stock(record.value))
        except BadRecord:
            continue

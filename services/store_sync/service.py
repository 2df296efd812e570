"""The store-sync service: stores, mappings, catalog and the three feeds around one producer and three consumers.

Use as `async with StoreSyncService(...) as service: await service.run()` (`build_service` builds it from
settings); `stop()` ends `run()`. `store_sync_app` is its admin port.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry, Counter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.store_sync.carriers import CarrierBook
from services.store_sync.catalog import Catalog, CatalogKeeper
from services.store_sync.feeds import InventoryFeed, ProductWebhookFeed, ShipmentFeed, refresh_catalogs_forever
from services.store_sync.inventory import InventorySync
from services.store_sync.records import BadRecord, parse_stock
from services.store_sync.results import ResultWriter
from services.store_sync.retry import sleep_unless_stopped, store_sync_policy
from services.store_sync.shipments import ShipmentSyncer
from shared.admin import admin_app
from shared.kafka import create_consumer, create_managed_producer, read_to_end
from shared.kafka_metrics import ConsumerLag
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
from shared.tiktok.metrics import TikTokMetrics
from shared.topics import OMS_INVENTORY, OMS_SHIPMENTS, SYNC_RESULTS, TIKTOK_WEBHOOKS, topic_name

log = get_logger("store_sync")
SHIPMENTS_GROUP = "shopsync-store-sync-shipments"
INVENTORY_GROUP = "shopsync-store-sync-inventory"
WEBHOOKS_GROUP = "shopsync-store-sync-webhooks"
LONG_POLL_MS = 30 * 60 * 1000  # a shipment may wait out a long 429 storm before its batch commits


def store_sync_client(settings: Settings, **overrides: Any) -> TikTokClient:
    """The TikTok client store sync calls through, with store sync's retry policy (`retry.store_sync_policy`): its
    retries are the only ones, and `attempts` in `sync.results` is the number of HTTP calls made."""
    return TikTokClient.from_settings(settings, **({"retry": store_sync_policy(settings)} | overrides))


class StoreSyncService:
    """Everything one store-sync process runs. It owns what it is given: `async with` starts and stops the
    producer, the consumers (shipments, inventory, webhooks) and the TikTok client, which should come from
    `store_sync_client` with a sleep that ends when `stop` is set (`retry.sleep_unless_stopped(stop)`; `stop()`
    sets it)."""

    def __init__(self, settings: Settings, *, producer: ManagedProducer, shipments: AIOKafkaConsumer,
                 inventory: AIOKafkaConsumer, webhooks: AIOKafkaConsumer, tiktok: TikTokClient,
                 registry: CollectorRegistry | None = None, cipher: TokenCipher | None = None,
                 stop: asyncio.Event | None = None) -> None:
        self.settings = settings
        self.producer = producer
        self.registry = registry or CollectorRegistry()
        self.ready = asyncio.Event()  # state restored and every feed consuming
        self.stale_webhooks = Counter("webhooks_stale_total", "Product/inventory webhooks older than the newest "
                                      "already acted on (by data.update_time), dropped without an API call", ["type"],
                                      registry=self.registry)
        self.results = Counter("store_sync_results_total", "Outcomes published on sync.results, by kind (shipment, "
                               "inventory), status (applied, failed, skipped) and reason", ["kind", "status", "reason"],
                               registry=self.registry)
        self._consumers = (shipments, inventory, webhooks)
        self._tiktok = tiktok
        self._stop = stop if stop is not None else asyncio.Event()
        self.table = StoreTable()
        self._commands = StoreCommands(settings, producer, requested_by="store_sync")  # refreshes: the owner's
        cipher = cipher or TokenCipher(settings.shopsync_secret_key.get_secret_value())
        self.tokens = TokenKeeper(self.table, self._commands, tiktok, cipher)
        tiktok.on_token_expired = self.tokens.on_token_expired
        self.mappings = MappingTable()
        self.catalog = Catalog()
        self.keeper = CatalogKeeper(self.catalog, tiktok, self.tokens, producer, settings)
        self.writer = ResultWriter(producer, settings, self.results)
        self.syncer = ShipmentSyncer(self.table, self.tokens, tiktok, CarrierBook(tiktok))
        self.inventory = InventorySync(settings, self.table, self.mappings.mappings, self.catalog, self.keeper,
                                       self.tokens, tiktok, self.writer, self._stop)

    async def __aenter__(self) -> StoreSyncService:
        settings = self.settings
        await self.producer.start()
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
        self.ready.set()
        log.info("store_sync_started", stores=len(self.table.stores))
        return self

    async def run(self) -> None:
        """Push shipments and stock levels to TikTok until `stop()`."""
        settings, stop, inventory = self.settings, self._stop, self.inventory
        shipments, levels, webhooks = self._consumers

        async def mapping_changed(key: str) -> None:
            inventory.recheck(*split_mapping_key(key), "mapping_change")

        async with self._commands, asyncio.TaskGroup() as tasks:
            tasks.create_task(self.table.follow(settings, stop))
            tasks.create_task(self.mappings.follow(settings, stop, mapping_changed))
            tasks.create_task(inventory.run())
            tasks.create_task(refresh_catalogs_forever(self.table, self.keeper, inventory, settings, stop))
            tasks.create_task(ShipmentFeed(settings, shipments, self.producer, self.syncer, self.writer, stop).run())
            tasks.create_task(InventoryFeed(settings, levels, self.producer, inventory, stop).run())
            tasks.create_task(ProductWebhookFeed(webhooks, self.table, self.keeper, inventory, settings, stop,
                                                 self.stale_webhooks).run())

    def stop(self) -> None:
        self._stop.set()

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        self.ready.clear()
        await self._close()
        log.info("store_sync_stopped")

    async def _close(self) -> None:
        for consumer in self._consumers:
            await consumer.stop()
        await self.producer.stop()
        await self._tiktok.aclose()


def build_service(settings: Settings, tiktok: TikTokClient | None = None,
                  stop: asyncio.Event | None = None) -> StoreSyncService:
    """The service with its own producer and consumers; `tiktok` defaults to `store_sync_client` with a backoff that
    ends with the service; `stop` (default: a new event) stops it."""
    prefix, registry, stop = settings.shopsync_topic_prefix, CollectorRegistry(), stop or asyncio.Event()
    lag = ConsumerLag(registry)  # kafka_consumer_lag{group, topic}

    def consumer(group: str, topic: str) -> AIOKafkaConsumer:
        return create_consumer(settings, topic_name(group, prefix), topic, max_poll_interval_ms=LONG_POLL_MS,
                               lag=lag)

    return StoreSyncService(settings, producer=create_managed_producer(settings, "store_sync", registry),
                            shipments=consumer(SHIPMENTS_GROUP, OMS_SHIPMENTS),
                            inventory=consumer(INVENTORY_GROUP, OMS_INVENTORY),
                            webhooks=consumer(WEBHOOKS_GROUP, TIKTOK_WEBHOOKS),
                            tiktok=tiktok or store_sync_client(settings, sleep=sleep_unless_stopped(stop),
                                                               metrics=TikTokMetrics(registry)),
                            registry=registry, stop=stop)


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


async def stats(request: Request) -> Response:
    inv: InventorySync = request.state.service.inventory
    return JSONResponse({"ready": request.state.service.ready.is_set(), "update_calls": inv.stats.update_calls,
                         "search_calls": inv.stats.search_calls, "pending": len(inv.pending),
                         "results": dict(inv.stats.results)})


def store_sync_app(settings: Settings, build: Callable[[], StoreSyncService] | None = None) -> Starlette:
    """The admin port: `/healthz`, `/readyz`, `/metrics` and `/stats`; its lifespan runs the service (`build`,
    default `build_service(settings)`)."""
    return admin_app("store_sync", build or (lambda: build_service(settings)), [Route("/stats", stats)])

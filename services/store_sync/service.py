"""Wiring for the store-sync process: stores, mappings, catalog, the three feeds, and the admin app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from services.store_sync.carriers import CarrierBook
from services.store_sync.catalog import Catalog, CatalogKeeper
from services.store_sync.feeds import InventoryFeed, ProductWebhookFeed, ShipmentFeed, refresh_catalogs_forever
from services.store_sync.inventory import InventorySync
from services.store_sync.records import BadRecord, parse_stock
from services.store_sync.results import ResultWriter
from services.store_sync.retry import sleep_unless_stopped, store_sync_policy
from services.store_sync.shipments import ShipmentSyncer
from shared.health import readiness
from shared.kafka import create_consumer, create_managed_producer, read_to_end
from shared.kafka_metrics import ConsumerLag
from shared.logging import get_logger
from shared.mapping_table import MappingTable
from shared.mappings import split_mapping_key
from shared.process import exit_if_failed
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


@dataclass
class StoreSyncService:
    """Everything one store-sync process runs; `run(stop)` until stopped. An injected `client` should come from
    `store_sync_client` (no retries of its own)."""

    settings: Settings
    client: TikTokClient | None = None
    inventory: InventorySync | None = field(default=None, init=False)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry, init=False)
    producer: ManagedProducer | None = field(default=None, init=False)
    stale_webhooks: Counter = field(init=False)
    results: Counter = field(init=False)
    lag: ConsumerLag = field(init=False)
    tiktok_metrics: TikTokMetrics = field(init=False)

    def __post_init__(self) -> None:
        self.stale_webhooks = Counter("webhooks_stale_total", "Product/inventory webhooks older than the newest "
                                      "already acted on (by data.update_time), dropped without an API call", ["type"],
                                      registry=self.registry)
        self.results = Counter("store_sync_results_total", "Outcomes published on sync.results, by kind (shipment, "
                               "inventory), status (applied, failed, skipped) and reason", ["kind", "status", "reason"],
                               registry=self.registry)
        self.lag = ConsumerLag(self.registry)  # kafka_consumer_lag{group, topic}
        self.tiktok_metrics = TikTokMetrics(self.registry)

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        prefix = settings.shopsync_topic_prefix
        cipher = TokenCipher(settings.shopsync_secret_key.get_secret_value())
        client = self.client or store_sync_client(settings, sleep=sleep_unless_stopped(stop),
                                                  metrics=self.tiktok_metrics)
        producer = self.producer = create_managed_producer(settings, "store_sync", self.registry)
        consumers = [create_consumer(settings, topic_name(SHIPMENTS_GROUP, prefix), OMS_SHIPMENTS,
                                     max_poll_interval_ms=LONG_POLL_MS, lag=self.lag),
                     create_consumer(settings, topic_name(INVENTORY_GROUP, prefix), OMS_INVENTORY,
                                     max_poll_interval_ms=LONG_POLL_MS, lag=self.lag),
                     create_consumer(settings, topic_name(WEBHOOKS_GROUP, prefix), TIKTOK_WEBHOOKS,
                                     max_poll_interval_ms=LONG_POLL_MS, lag=self.lag)]
        await producer.start()
        try:
            table = await StoreTable().load(settings)
            commands = StoreCommands(settings, producer, requested_by="store_sync")  # refreshes: the owner's
            tokens = TokenKeeper(table, commands, client, cipher)
            client.on_token_expired = tokens.on_token_expired
            mappings = MappingTable()
            await mappings.load(settings)
            catalog = await Catalog().load(settings)
            keeper = CatalogKeeper(catalog, client, tokens, producer, settings)
            writer = ResultWriter(producer, settings, self.results)
            syncer = ShipmentSyncer(table, tokens, client, CarrierBook(client))
            await _restore_shipments(settings, syncer)
            inventory = InventorySync(settings, table, mappings.mappings, catalog, keeper, tokens, client, writer,
                                      stop)
            await _restore_levels(settings, inventory)
            await asyncio.gather(*(consumer.start() for consumer in consumers))  # each joins its group: in parallel
            self.inventory = inventory  # ready (`/readyz`): state restored and every feed consuming

            async def mapping_changed(key: str) -> None:
                inventory.recheck(*split_mapping_key(key), "mapping_change")

            async with commands, asyncio.TaskGroup() as tasks:
                tasks.create_task(table.follow(settings, stop))
                tasks.create_task(mappings.follow(settings, stop, mapping_changed))
                tasks.create_task(inventory.run())
                tasks.create_task(refresh_catalogs_forever(table, keeper, inventory, settings, stop))
                tasks.create_task(ShipmentFeed(settings, consumers[0], producer, syncer, writer, stop).run())
                tasks.create_task(InventoryFeed(settings, consumers[1], producer, inventory, stop).run())
                tasks.create_task(ProductWebhookFeed(consumers[2], table, keeper, inventory, settings, stop,
                                                     self.stale_webhooks).run())
        finally:
            for consumer in consumers:
                await consumer.stop()
            await producer.stop()
            if self.client is None:
                await client.aclose()


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


def admin_app(service: StoreSyncService, stop: asyncio.Event) -> Starlette:
    """`/healthz`, `/readyz`, `/metrics` and `/stats`; the lifespan runs the service."""
    registry = service.registry

    def stats() -> dict[str, object]:
        inv = service.inventory
        if inv is None:
            return {"ready": False}
        return {"ready": True, "update_calls": inv.stats.update_calls, "search_calls": inv.stats.search_calls,
                "pending": len(inv.pending), "results": dict(inv.stats.results)}

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(_: Request) -> Response:
        return await readiness(service.producer, starting=service.inventory is None)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def stats_endpoint(_: Request) -> Response:
        return JSONResponse(stats())

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(service.run(stop))
        task.add_done_callback(exit_if_failed("store_sync"))
        yield
        stop.set()
        await task

    return Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics),
                             Route("/stats", stats_endpoint)], lifespan=lifespan)

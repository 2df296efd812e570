"""The store-sync process: single-active with hot standbys. Each instance joins the lease group (`lease.py`); the
one holding the lease runs the work (`active.ActiveSync`), the others wait, ready to take over.

Use as `async with StoreSyncService(...) as service: await service.run()` (`build_service` builds it from settings);
`stop()` ends `run()`. `store_sync_app` is its admin port.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Gauge
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.store_sync.active import ActiveSync, StoreSyncMetrics, WorkEnded
from services.store_sync.inventory import InventorySync
from services.store_sync.lease import LEASE_GROUP, Lease, lease_client_id
from services.store_sync.retry import sleep_unless_stopped, store_sync_policy
from shared.admin import admin_app
from shared.kafka import BATCHED_FETCHES, create_consumer, create_managed_producer
from shared.kafka_metrics import ConsumerLag
from shared.logging import get_logger
from shared.producer import ManagedProducer
from shared.settings import Settings
from shared.stores.crypto import TokenCipher
from shared.tiktok.client import TikTokClient
from shared.tiktok.metrics import TikTokMetrics
from shared.topics import OMS_INVENTORY, OMS_SHIPMENTS, TIKTOK_WEBHOOKS, topic_name

log = get_logger("store_sync")
SHIPMENTS_GROUP = "shopsync-store-sync-shipments"
INVENTORY_GROUP = "shopsync-store-sync-inventory"
WEBHOOKS_GROUP = "shopsync-store-sync-webhooks"
LONG_POLL_MS = 30 * 60 * 1000  # a shipment may wait out a long 429 storm before its batch commits
RETRY_S = 1.0
Consumers = Callable[[], tuple[AIOKafkaConsumer, AIOKafkaConsumer, AIOKafkaConsumer]]


def store_sync_client(settings: Settings, **overrides: Any) -> TikTokClient:
    """The TikTok client store sync calls through, with store sync's retry policy (`retry.store_sync_policy`): its
    retries are the only ones, and `attempts` in `sync.results` is the number of HTTP calls made."""
    return TikTokClient.from_settings(settings, **({"retry": store_sync_policy(settings)} | overrides))


class StoreSyncService:
    """One store-sync process. It owns what it is given: `async with` starts and stops the producer, the lease and
    the TikTok client (which should come from `store_sync_client` with a sleep that ends when `stop` is set:
    `retry.sleep_unless_stopped(stop)`; `stop()` sets it). `consumers` makes the shipments, inventory and webhooks
    consumers of each activation (an instance that holds the lease again starts with fresh ones)."""

    def __init__(self, settings: Settings, *, producer: ManagedProducer, lease: Lease, consumers: Consumers,
                 tiktok: TikTokClient, registry: CollectorRegistry | None = None, cipher: TokenCipher | None = None,
                 stop: asyncio.Event | None = None) -> None:
        self.settings = settings
        self.producer = producer
        self.lease = lease
        self.registry = registry or CollectorRegistry()
        self.metrics = StoreSyncMetrics.on(self.registry)
        self.active_gauge = Gauge("store_sync_active", "1 while this instance holds the store-sync lease (does the "
                                  "work), 0 as a standby", registry=self.registry)
        self.ready = asyncio.Event()  # holding the lease with every feed consuming, or a standby in the lease group
        self.active: ActiveSync | None = None
        self._consumers = consumers
        self._tiktok = tiktok
        self._cipher = cipher or TokenCipher(settings.shopsync_secret_key.get_secret_value())
        self._stop = stop if stop is not None else asyncio.Event()

    @property
    def inventory(self) -> InventorySync | None:
        """The active work's inventory sync; None on a standby."""
        return self.active.inventory if self.active is not None else None

    async def __aenter__(self) -> StoreSyncService:
        await self.producer.start()
        try:
            await self.lease.start()
        except BaseException:
            await self._close()
            raise
        return self

    async def run(self) -> None:
        """Hold the lease or wait for it, and do the work while holding it, until `stop()`."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.lease.run(self._stop))
            tasks.create_task(self._ready_as_standby())
            while await _first_set(self._stop, self.lease.held) is not self._stop:
                await self._activation()

    async def _activation(self) -> None:
        """The work, from taking the lease until it is lost or the process stops; a failure of Kafka or of a part of
        the work ends the activation (logged) and the loop starts another while the lease is held."""
        stop = asyncio.Event()
        relay = asyncio.get_running_loop().create_task(_set_when_any(stop, self.lease.lost, self._stop))
        try:
            await self._work(stop)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            log.error("store_sync_restart", error="a future the work awaited was cancelled")  # not us: go on
        finally:
            self.active = None
            self.active_gauge.set(0)
            self.ready.clear()
            relay.cancel()
            self.lease.released.set()

    async def _work(self, stop: asyncio.Event) -> None:
        shipments, inventory, webhooks = self._consumers()
        try:
            async with ActiveSync(self.settings, producer=self.producer, shipments=shipments, inventory=inventory,
                                  webhooks=webhooks, tiktok=self._tiktok, metrics=self.metrics, cipher=self._cipher,
                                  stop=stop) as active:
                self.active = active
                self.active_gauge.set(1)
                self.ready.set()
                await active.run()
        except* (KafkaError, WorkEnded) as failed:  # Kafka went away while loading, or a part of the work ended
            log.error("store_sync_restart", error=repr(failed.exceptions[0]))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), RETRY_S)

    async def _ready_as_standby(self) -> None:
        while not self._stop.is_set():
            await _first_set(self._stop, self.lease.standby)
            if self.lease.standby.is_set() and not self.lease.held.is_set():
                self.ready.set()
            await _first_set(self._stop, self.lease.held)

    def stop(self) -> None:
        self._stop.set()

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        self.ready.clear()
        await self._close()
        log.info("store_sync_stopped")

    async def _close(self) -> None:
        await self.lease.stop()  # leave the group first: a standby takes over at once
        await self.producer.stop()
        await self._tiktok.aclose()


async def _first_set(*events: asyncio.Event) -> asyncio.Event:
    """Wait until one of `events` is set; the first one (in argument order) that is."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return next(e for e in events if e.is_set())


async def _set_when_any(target: asyncio.Event, *events: asyncio.Event) -> None:
    await _first_set(*events)
    target.set()


def build_service(settings: Settings, tiktok: TikTokClient | None = None,
                  stop: asyncio.Event | None = None) -> StoreSyncService:
    """The service with its own producer, lease and consumers; `tiktok` defaults to `store_sync_client` with a
    backoff that ends with the service; `stop` (default: a new event) stops it."""
    prefix, registry, stop = settings.shopsync_topic_prefix, CollectorRegistry(), stop or asyncio.Event()
    lag = ConsumerLag(registry)  # kafka_consumer_lag{group, topic}

    def consumer(group: str, topic: str, **options: Any) -> AIOKafkaConsumer:
        return create_consumer(settings, topic_name(group, prefix), topic, max_poll_interval_ms=LONG_POLL_MS,
                               lag=lag, **options)

    def consumers() -> tuple[AIOKafkaConsumer, AIOKafkaConsumer, AIOKafkaConsumer]:
        return (consumer(SHIPMENTS_GROUP, OMS_SHIPMENTS), consumer(INVENTORY_GROUP, OMS_INVENTORY),
                consumer(WEBHOOKS_GROUP, TIKTOK_WEBHOOKS, **BATCHED_FETCHES))  # every webhook, for product events

    lease = Lease(settings, create_consumer(settings, topic_name(LEASE_GROUP, prefix), client_id=lease_client_id()))
    return StoreSyncService(settings, producer=create_managed_producer(settings, "store_sync", registry),
                            lease=lease, consumers=consumers,
                            tiktok=tiktok or store_sync_client(settings, sleep=sleep_unless_stopped(stop),
                                                               metrics=TikTokMetrics(registry)),
                            registry=registry, stop=stop)


async def stats(request: Request) -> Response:
    service: StoreSyncService = request.state.service
    inv = service.inventory
    if inv is None:
        return JSONResponse({"ready": service.ready.is_set(), "active": False})
    return JSONResponse({"ready": service.ready.is_set(), "active": True, "update_calls": inv.stats.update_calls,
                         "search_calls": inv.stats.search_calls, "pending": len(inv.pending),
                         "results": dict(inv.stats.results)})


def store_sync_app(settings: Settings, build: Callable[[], StoreSyncService] | None = None) -> Starlette:
    """The admin port: `/healthz`, `/readyz`, `/metrics` and `/stats`; its lifespan runs the service (`build`,
    default `build_service(settings)`)."""
    return admin_app("store_sync", build or (lambda: build_service(settings)), [Route("/stats", stats)])

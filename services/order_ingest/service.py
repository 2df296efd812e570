"""Wiring for the ingest process: stores, client, token keeper, worker, reconciliation and the admin app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from services.order_ingest.fetch import OrderFetcher, ingest_policy
from services.order_ingest.metrics import IngestMetrics
from services.order_ingest.outputs import OrderOutputs
from services.order_ingest.ownership import Ownership
from services.order_ingest.reconcile import reconcile_forever
from services.order_ingest.worker import IngestWorker
from shared.dedupe import NotificationWindow
from shared.health import readiness
from shared.kafka import create_consumer, create_managed_producer
from shared.logging import get_logger
from shared.process import exit_if_failed
from shared.settings import Settings
from shared.stores.commands import StoreCommands
from shared.stores.crypto import TokenCipher
from shared.stores.table import StoreTable
from shared.stores.tokens import TokenKeeper
from shared.tiktok.client import TikTokClient
from shared.tiktok.retry import sleep_unless_stopped
from shared.topics import TIKTOK_WEBHOOKS, topic_name

GROUP = "shopsync-order-ingest"
log = get_logger("order_ingest")


@dataclass
class IngestService:
    """Everything one ingest process runs; `run(stop)` until stopped."""

    settings: Settings
    client: TikTokClient | None = None

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        cipher = TokenCipher(settings.shopsync_secret_key.get_secret_value())
        self.metrics = IngestMetrics()
        producer = create_managed_producer(settings, "ingest", self.metrics.registry)
        self.producer = producer
        consumer = create_consumer(settings, topic_name(GROUP, settings.shopsync_topic_prefix), lag=self.metrics.lag)
        client = self.client or TikTokClient.from_settings(settings, retry=ingest_policy(settings),
                                                           sleep=sleep_unless_stopped(stop),
                                                           metrics=self.metrics.tiktok)
        await producer.start()
        try:
            table = await StoreTable().load(settings)
            commands = StoreCommands(settings, producer, requested_by="order_ingest")  # refreshes: the owner's
            tokens = TokenKeeper(table, commands, client, cipher)
            client.on_token_expired = tokens.on_token_expired
            outputs = OrderOutputs(producer, settings)
            notifications = NotificationWindow()
            ownership = Ownership(settings, consumer, outputs, notifications)  # state per assigned partition
            consumer.subscribe([topic_name(TIKTOK_WEBHOOKS, settings.shopsync_topic_prefix)], listener=ownership)
            await consumer.start()
            fetcher = OrderFetcher(table, tokens, client, self.metrics)
            worker = IngestWorker(settings, consumer, producer, outputs, table, fetcher, self.metrics,
                                  restored=ownership.restored, notifications=notifications)
            self.worker, self.ownership = worker, ownership
            async with commands, asyncio.TaskGroup() as tasks:
                tasks.create_task(table.follow(settings, stop))
                tasks.create_task(worker.run(stop))
                if settings.shopsync_reconcile_interval_s > 0:
                    tasks.create_task(reconcile_forever(table, client, tokens, producer, settings, stop,
                                                        owns=ownership.owns))
        finally:
            await consumer.stop()
            await producer.stop()
            if self.client is None:
                await client.aclose()


def admin_app(service: IngestService, stop: asyncio.Event) -> Starlette:
    """`/healthz`, `/readyz` and `/metrics`; the lifespan runs the service."""

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(_: Request) -> Response:
        return await readiness(getattr(service, "producer", None))

    async def metrics(_: Request) -> Response:
        registry = getattr(service, "metrics", None)
        return Response(generate_latest(registry.registry) if registry else b"", media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(service.run(stop))
        task.add_done_callback(exit_if_failed("ingest"))
        yield
        stop.set()
        await task

    return Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz),
                                     Route("/metrics", metrics)], lifespan=lifespan)


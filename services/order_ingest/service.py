"""The ingest service: stores, token keeper, worker and reconciliation around one consumer and one producer.

Use as `async with IngestService(...) as service: await service.run()` (`wiring.build_service` builds it from
settings); `stop()` ends `run()`.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from services.order_ingest.fetch import OrderFetcher
from services.order_ingest.metrics import IngestMetrics
from services.order_ingest.outputs import OrderOutputs
from services.order_ingest.ownership import Ownership
from services.order_ingest.reconcile import reconcile_forever
from services.order_ingest.worker import IngestWorker
from shared.dedupe import NotificationWindow
from shared.logging import get_logger
from shared.producer import ManagedProducer
from shared.settings import Settings
from shared.stores.commands import StoreCommands
from shared.stores.crypto import TokenCipher
from shared.stores.table import StoreTable
from shared.stores.tokens import TokenKeeper
from shared.tiktok.client import TikTokClient
from shared.topics import TIKTOK_WEBHOOKS, topic_name

GROUP = "shopsync-order-ingest"
log = get_logger("order_ingest")


class IngestService:
    """Everything one ingest process runs. It owns what it is given: `async with` starts and stops the producer,
    the consumer and the TikTok client. The client should retry as `fetch.ingest_policy` says (the one retry
    layer), with a backoff that ends when `stop` is set (`sleep_unless_stopped(stop)`; `stop()` sets it)."""

    def __init__(self, settings: Settings, *, producer: ManagedProducer, consumer: AIOKafkaConsumer,
                 tiktok: TikTokClient, metrics: IngestMetrics | None = None, cipher: TokenCipher | None = None,
                 stop: asyncio.Event | None = None) -> None:
        self.settings = settings
        self.producer = producer
        self.metrics = metrics or IngestMetrics()
        self.ready = asyncio.Event()  # started: the store table loaded and the consumer in its group
        self.table = StoreTable()
        self._consumer = consumer
        self._tiktok = tiktok
        self._stop = stop or asyncio.Event()
        self._commands = StoreCommands(settings, producer, requested_by="order_ingest")  # refreshes: the owner's
        cipher = cipher or TokenCipher(settings.shopsync_secret_key.get_secret_value())
        self.tokens = TokenKeeper(self.table, self._commands, tiktok, cipher)
        tiktok.on_token_expired = self.tokens.on_token_expired
        self.outputs = OrderOutputs(producer, settings)
        notifications = NotificationWindow()
        self.ownership = Ownership(settings, consumer, self.outputs, notifications)  # state per assigned partition
        self.worker = IngestWorker(settings, consumer, producer, self.outputs, self.table,
                                   OrderFetcher(self.table, self.tokens, tiktok, self.metrics), self.metrics,
                                   restored=self.ownership.restored, notifications=notifications)

    @property
    def registry(self) -> CollectorRegistry:
        return self.metrics.registry

    async def __aenter__(self) -> IngestService:
        await self.producer.start()
        try:
            await self.table.load(self.settings)
            self._consumer.subscribe([topic_name(TIKTOK_WEBHOOKS, self.settings.shopsync_topic_prefix)],
                                     listener=self.ownership)
            await self._consumer.start()
        except BaseException:
            await self._close()
            raise
        self.ready.set()
        log.info("ingest_started", stores=len(self.table.stores))
        return self

    async def run(self) -> None:
        """Consume webhooks (and reconcile on schedule) until `stop()`."""
        settings, stop = self.settings, self._stop
        async with self._commands, asyncio.TaskGroup() as tasks:
            tasks.create_task(self.table.follow(settings, stop))
            tasks.create_task(self.worker.run(stop))
            if settings.shopsync_reconcile_interval_s > 0:
                tasks.create_task(reconcile_forever(self.table, self._tiktok, self.tokens, self.producer, settings,
                                                    stop, owns=self.ownership.owns))

    def stop(self) -> None:
        self._stop.set()

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        self.ready.clear()
        await self._close()
        log.info("ingest_stopped")

    async def _close(self) -> None:
        await self._consumer.stop()
        await self.producer.stop()
        await self._tiktok.aclose()

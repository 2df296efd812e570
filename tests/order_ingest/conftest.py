"""The ingest worker on the session broker with a scripted TikTok, fed webhook records by hand (the whole ingest
over the sandbox is the `harness` fixture in tests/conftest.py)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

from services.order_ingest.fetch import OrderFetcher
from services.order_ingest.metrics import IngestMetrics
from services.order_ingest.outputs import OrderOutputs
from services.order_ingest.service import GROUP
from services.order_ingest.worker import IngestWorker
from shared.kafka import create_consumer, create_producer
from shared.settings import Settings
from shared.stores.crypto import TokenCipher, generate_key
from shared.stores.tokens import TokenKeeper
from shared.topics import TIKTOK_WEBHOOKS, topic_name
from tests.fakes import UPDATE_TIMES, FakeTikTok, linked_store
from tests.stores.memory_owner import MemoryOwner
from tests.waiting import eventually

SHOP_A, SHOP_B = "1001", "1002"
_notifications = itertools.count(1)


@dataclass
class Rig:
    """An `IngestWorker` over linked stores; webhook records are pushed by hand on partition 0 of the topic."""

    settings: Settings
    tiktok: FakeTikTok
    worker: IngestWorker
    producer: AIOKafkaProducer
    metrics: IngestMetrics
    owner: MemoryOwner
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.worker.run(self.stop))

    async def push(self, shop_id: str, order_id: str, status: str | None = "AWAITING_SHIPMENT",
                   event_type: int = 1, update_time: int | None = None, notification_id: str | None = None) -> int:
        """An order webhook as the gateway writes it (dated now and a new notification unless told); its offset."""
        data = {"order_id": order_id, **({"order_status": status} if status else {}),
                "update_time": next(UPDATE_TIMES) if update_time is None else update_time}
        return await self.send(shop_id, f"{shop_id}:{order_id}", {
            "type": event_type, "shop_id": shop_id, "timestamp": 1, "data": data,
            "tts_notification_id": notification_id or f"n-{order_id}-{next(_notifications)}"})

    async def send(self, shop_id: str, key: str, webhook: dict[str, object]) -> int:
        """Any webhook document, keyed `key`; its offset."""
        meta = await self.producer.send_and_wait(topic_name(TIKTOK_WEBHOOKS, self.settings.shopsync_topic_prefix),
                                                 orjson.dumps(webhook), key=key.encode(), partition=0)
        return int(meta.offset)

    async def committed(self) -> int | None:
        tp = TopicPartition(topic_name(TIKTOK_WEBHOOKS, self.settings.shopsync_topic_prefix), 0)
        offset: int | None = await self.worker.consumer.committed(tp)
        return offset

    async def until_committed(self, offset: int) -> None:
        async def reached() -> bool:
            assert self.task is None or not self.task.done(), "the worker stopped"
            return await self.committed() == offset

        await eventually(reached, within=20, what=lambda: f"offset {offset} committed")


RigFactory = Callable[[str, dict[str, str]], Awaitable[Rig]]


@pytest.fixture
async def make_rig(settings: Settings) -> AsyncIterator[RigFactory]:
    """A worker whose SHOPSYNC_SECRET_KEY is `keys`, over stores {shop id: the key its tokens are encrypted with}."""
    made: list[Rig] = []

    async def make(keys: str, stores: dict[str, str]) -> Rig:
        tiktok = FakeTikTok()
        owner = MemoryOwner(tiktok, TokenCipher(keys), *(linked_store(shop, TokenCipher(key))
                                                         for shop, key in stores.items()))
        table = owner.table
        producer = create_producer(settings)
        metrics = IngestMetrics()
        consumer = create_consumer(settings, topic_name(GROUP, settings.shopsync_topic_prefix), TIKTOK_WEBHOOKS,
                                   lag=metrics.lag)
        await producer.start()
        await consumer.start()
        tokens = TokenKeeper(table, owner, tiktok, TokenCipher(keys))  # type: ignore[arg-type]  # the fakes
        fetcher = OrderFetcher(table, tokens, tiktok, metrics, retry_base_s=0.05)  # type: ignore[arg-type]  # the fake
        worker = IngestWorker(settings, consumer, producer, OrderOutputs(producer, settings), table, fetcher,
                              metrics)
        made.append(rig := Rig(settings, tiktok, worker, producer, metrics, owner))
        return rig

    try:
        yield make
    finally:
        for rig in made:
            rig.stop.set()
            if rig.task is not None:
                await rig.task
            await rig.worker.consumer.stop()
            await rig.producer.stop()


@pytest.fixture
async def rig(make_rig: RigFactory) -> Rig:
    """A worker over two linked shops, SHOP_A and SHOP_B, under one key."""
    key = generate_key()
    return await make_rig(key, {SHOP_A: key, SHOP_B: key})

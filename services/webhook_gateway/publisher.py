"""Publish a webhook to Kafka and wait for the broker's acknowledgement, within a deadline."""

from __future__ import annotations

import asyncio
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError


class PublishFailed(RuntimeError):
    """Kafka did not acknowledge the record in time (or refused it); the caller answers 503."""


class Publisher(Protocol):
    """What the app needs from Kafka."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def publish(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None: ...
    async def ready(self) -> bool: ...


class KafkaPublisher:
    """An idempotent acks=all producer for one topic; `publish` returns only once the record is acknowledged."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, timeout_s: float) -> None:
        self._producer = producer
        self._topic = topic
        self._timeout_s = timeout_s
        self._started = False

    async def start(self) -> None:
        """Connect; a broker that is down at start-up is not fatal (requests get 503 until it is back)."""
        try:
            async with asyncio.timeout(self._timeout_s * 4):
                await self._producer.start()
            self._started = True
        except (KafkaError, TimeoutError, OSError):
            self._started = False

    async def stop(self) -> None:
        """Flush what is queued and disconnect."""
        if self._started:
            await self._producer.stop()
            self._started = False

    async def publish(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        if not self._started:
            await self.start()
            if not self._started:
                raise PublishFailed("Kafka is unreachable")
        try:
            async with asyncio.timeout(self._timeout_s):
                delivery = await self._producer.send(self._topic, value, key=key, headers=headers)
                await delivery
        except TimeoutError:
            raise PublishFailed(f"Kafka did not acknowledge within {self._timeout_s}s") from None
        except KafkaError as exc:
            raise PublishFailed(f"Kafka refused the record: {exc.__class__.__name__}") from None

    async def ready(self) -> bool:
        """Producer connected and the broker answers a metadata request."""
        if not self._started:
            return False
        try:
            async with asyncio.timeout(1.0):
                return bool(await self._producer.client.fetch_all_metadata())
        except Exception:  # noqa: BLE001 - not ready, whatever the cause
            return False

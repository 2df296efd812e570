"""Publish a webhook to Kafka and wait for the broker's acknowledgement, within a deadline."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Protocol

from aiokafka.errors import KafkaError

from shared.producer import ManagedProducer


class PublishFailed(RuntimeError):
    """Kafka did not acknowledge the record in time (or refused it); the caller answers 503."""


class Publisher(Protocol):
    """What the app needs from Kafka."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def publish(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None: ...
    async def readiness_problem(self) -> str | None: ...


class KafkaPublisher:
    """An idempotent acks=all producer for one topic; `publish` returns only once the record is acknowledged.

    The producer is a `ManagedProducer`: one that wedges after a broker restart is replaced, and while it is
    being replaced `publish` fails at once (503) instead of waiting for a deadline.

    Deadlines are kept in one queue swept every `SWEEP_S` instead of a timer per request (a per-request
    `asyncio.timeout` was ~15% of the gateway's CPU). Every request has the same timeout, so the queue is in
    deadline order. The producer's own `request_timeout_ms` bounds the wait inside `send` (broker unreachable).
    """

    SWEEP_S = 0.05

    def __init__(self, producer: ManagedProducer, topic: str, timeout_s: float) -> None:
        self._producer = producer
        self._topic = topic
        self._timeout_s = timeout_s
        self._started = False
        self._unreachable = "Kafka is unreachable"
        self._deadlines: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect; a broker that is down at start-up is not fatal (requests get 503 until it is back)."""
        try:
            async with asyncio.timeout(self._timeout_s * 4):
                await self._producer.start()
            self._started = True
        except (KafkaError, TimeoutError, OSError) as exc:
            self._started = False
            self._unreachable = f"Kafka is unreachable: {str(exc) or exc.__class__.__name__}"

    async def stop(self) -> None:
        """Flush what is queued and disconnect."""
        if self._started:
            await self._producer.stop()
            self._started = False
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def _sweep(self) -> None:
        """Fail the waits whose deadline has passed (the record may still land: TikTok's retry is a duplicate
        with the same ce_id, which consumers already handle)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.SWEEP_S)
            now = loop.time()
            while self._deadlines and self._deadlines[0][0] <= now:
                _, waiter = self._deadlines.popleft()
                if not waiter.done():
                    waiter.set_exception(PublishFailed(f"Kafka did not acknowledge within {self._timeout_s}s"))

    async def publish(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        if not self._started:
            await self.start()
            if not self._started:
                raise PublishFailed(self._unreachable)
        loop = asyncio.get_running_loop()
        if self._sweeper is None:
            self._sweeper = loop.create_task(self._sweep())
        deadline = loop.time() + self._timeout_s
        try:
            delivery = await self._producer.send(self._topic, value, key=key, headers=headers)
        except KafkaError as exc:
            raise PublishFailed(f"Kafka refused the record: {exc.__class__.__name__}") from None
        waiter: asyncio.Future[None] = loop.create_future()
        delivery.add_done_callback(lambda done: _settle(waiter, done))
        self._deadlines.append((deadline, waiter))
        await waiter

    async def readiness_problem(self) -> str | None:
        """None when records can be acknowledged: the producer is connected, not failing, and the broker answers."""
        if not self._started:
            return self._unreachable
        return await self._producer.check()


def _settle(waiter: asyncio.Future[None], delivery: asyncio.Future[object]) -> None:
    """Pass the broker's answer on to the request waiting for it (unless its deadline already failed it)."""
    if waiter.done():
        return
    if delivery.cancelled():
        waiter.set_exception(PublishFailed("the send was cancelled"))
    elif (exc := delivery.exception()) is not None:
        waiter.set_exception(PublishFailed(f"Kafka refused the record: {exc.__class__.__name__}"))
    else:
        waiter.set_result(None)

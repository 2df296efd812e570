"""Publish a webhook to Kafka and wait for the broker's acknowledgement, within a deadline."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from aiokafka.errors import KafkaError
from aiokafka.producer.message_accumulator import BatchBuilder

from shared.partitioner import Murmur2Partitioner
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

    Records are handed to aiokafka a batch per partition (its `send_batch`), not one `send` each: the records of
    the requests that arrive while a partition's previous batch waits for its turn are appended to an open batch,
    and one acknowledgement settles them all. That is how aiokafka batches `send`s too (one queued batch per
    partition, filled while the broker answers the previous request), without its per-record coroutines and
    futures. Until the topic's partitions are known, a record goes through `send`.

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
        self._partitioner = Murmur2Partitioner()
        self._open: dict[int, _OpenBatch] = {}  # partition → records not yet handed to aiokafka
        self._handing: dict[int, asyncio.Task[None]] = {}  # partition → its batch being handed over
        self._hand_over_scheduled = False

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
        """Hand over the open batches, flush what is queued and disconnect."""
        while self._open or self._handing:
            self._hand_over()
            await asyncio.gather(*self._handing.values(), return_exceptions=True)
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
        partitions = self._producer.partitions(self._topic)
        waiter: asyncio.Future[None] = loop.create_future()
        if partitions is None:
            await self._send_one(key, value, headers, waiter)
        else:
            self._append(self._partitioner(key, partitions, partitions), key, value, headers, waiter)
        self._deadlines.append((deadline, waiter))
        await waiter

    async def _send_one(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]],
                        waiter: asyncio.Future[None]) -> None:
        try:
            delivery = await self._producer.send(self._topic, value, key=key, headers=headers)
        except KafkaError as exc:
            raise PublishFailed(f"Kafka refused the record: {exc.__class__.__name__}") from None
        delivery.add_done_callback(lambda done: _settle(waiter, done))

    def _append(self, partition: int, key: bytes, value: bytes, headers: list[tuple[str, bytes]],
                waiter: asyncio.Future[None]) -> None:
        """Add the record to its partition's open batch (a full one is handed over and a new one opened)."""
        batch = self._open.get(partition)
        while batch is None or batch.builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
            if batch is not None:  # full
                del self._open[partition]
                self._start_handing(partition, batch)
            try:
                batch = self._open[partition] = _OpenBatch(self._producer.create_batch(), [])
            except KafkaError as exc:
                raise PublishFailed(f"Kafka refused the record: {exc.__class__.__name__}") from None
        batch.waiters.append(waiter)
        if not self._hand_over_scheduled:
            self._hand_over_scheduled = True
            asyncio.get_running_loop().call_soon(self._hand_over)

    def _hand_over(self) -> None:
        """Hand over each open batch whose partition has no batch still being handed over."""
        self._hand_over_scheduled = False
        for partition in [p for p in self._open if p not in self._handing]:
            self._start_handing(partition, self._open.pop(partition))

    def _start_handing(self, partition: int, batch: _OpenBatch) -> None:
        before = self._handing.get(partition)  # a full batch handed over while another is: keep their order
        self._handing[partition] = asyncio.get_running_loop().create_task(
            self._hand_over_batch(partition, batch, before))

    async def _hand_over_batch(self, partition: int, batch: _OpenBatch, before: asyncio.Task[None] | None) -> None:
        """`send_batch` (it waits while the partition's previous batch is queued), then settle every waiter of the
        batch with the broker's answer; then hand over what opened meanwhile."""
        try:
            if before is not None:
                await asyncio.wait([before])
            delivery = await self._producer.send_batch(batch.builder, self._topic, partition)
        except KafkaError as exc:
            failure = PublishFailed(f"Kafka refused the record: {exc.__class__.__name__}")
            for waiter in batch.waiters:
                if not waiter.done():
                    waiter.set_exception(failure)
        else:
            delivery.add_done_callback(lambda done: _settle_all(batch.waiters, done))
        finally:
            if self._handing.get(partition) is asyncio.current_task():
                del self._handing[partition]
            if partition in self._open and not self._hand_over_scheduled:
                self._hand_over_scheduled = True
                asyncio.get_running_loop().call_soon(self._hand_over)

    async def readiness_problem(self) -> str | None:
        """None when records can be acknowledged: the producer is connected, not failing, and the broker answers."""
        if not self._started:
            return self._unreachable
        return await self._producer.check()


@dataclass(slots=True)
class _OpenBatch:
    builder: BatchBuilder
    waiters: list[asyncio.Future[None]]


def _settle_all(waiters: list[asyncio.Future[None]], delivery: asyncio.Future[object]) -> None:
    for waiter in waiters:
        _settle(waiter, delivery)


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

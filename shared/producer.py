"""One long-lived Kafka producer per service, replaced by a new one when aiokafka's idempotent producer wedges.

aiokafka's idempotent producer (aio-libs/aiokafka#1017) never resets its sequence numbers after batches fail
while a partition leader is away: once the broker is back, every send is refused with `OutOfOrderSequenceNumber`
until the process restarts (the Java client bumps the producer epoch instead, KIP-360). `ManagedProducer` owns
the producer's life: on such a fatal error, or when no send has been acknowledged for `stuck_after_s` while
sends keep failing, it closes the producer and starts a new one (a new producer id). A caller's send either
succeeds (the record is on the log) or fails with an error: never a false success. `deliver` is the one retry
layer for callers that must not give up (dead letters, store records, outboxes): it resends through outages and
restarts until the broker acknowledges or the producer is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)
from aiokafka.structs import RecordMetadata
from prometheus_client import CollectorRegistry, Counter, Gauge

from shared.logging import get_logger

log = get_logger("kafka.producer")

FATAL_ERRORS: tuple[type[BaseException], ...] = (
    OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch, InvalidProducerIdMapping, ProducerFenced)
CLOSE_TIMEOUT_S = 30.0  # a replaced producer's queued batches fail or land within its own request timeout
RESTART_BACKOFF_S = (0.2, 5.0)  # first and longest wait between attempts to start the replacement


class ProducerUnavailable(KafkaError):  # type: ignore[misc]  # aiokafka is untyped: its base is Any
    """No producer can take the record right now (restarting after a fatal error, or closed); nothing was sent."""


class ProducerMetrics:
    """`kafka_producer_restarts_total{reason}`, `kafka_producer_ready` and `dlq_records_total{source_topic}` (every
    dead letter goes out through the service's producer: `shared.dlq.send_to_dlq`) on a service's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.restarts = Counter("kafka_producer_restarts_total", "Producers replaced after a fatal error",
                                ["reason"], registry=registry)
        self.ready = Gauge("kafka_producer_ready", "1 while the producer gets records acknowledged",
                           registry=registry)
        self.dead_letters = Counter("dlq_records_total", "Records this service put on shopsync.dlq, by the topic they "
                                    "came from", ["source_topic"], registry=registry)


class ManagedProducer:
    """An idempotent producer that replaces itself when it can no longer get records acknowledged.

    `send`/`send_and_wait` mirror aiokafka's (the future resolves with the broker's answer); `problem` says why
    the producer is not ready (None when it is): not started, restarting, or sends failing since a given time.
    """

    def __init__(self, factory: Callable[[], AIOKafkaProducer], *, name: str = "producer",
                 stuck_after_s: float = 10.0, metrics: ProducerMetrics | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._factory = factory
        self._name = name
        self._stuck_after_s = stuck_after_s
        self._metrics = metrics
        self._clock = clock
        self._producer: AIOKafkaProducer | None = None
        self._observe: Callable[[asyncio.Future[Any]], None] = functools.partial(self._on_delivery, 0)
        self._generation = 0
        self._failing_since: float | None = None
        self._failure: str | None = None
        self._restart_reason: str | None = None
        self._wake = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False
        self.restarts = 0

    # ---- life ------------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the first producer (raises like aiokafka when the broker cannot be reached) and the supervisor."""
        self._closed = False
        if self._producer is None:
            producer = self._factory()
            try:
                await producer.start()
            except BaseException:
                await _close_quietly(producer)
                raise
            self._install(producer)
        if self._supervisor is None:
            self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def stop(self) -> None:
        """Flush what is queued, then close the producer (and any replaced one still closing)."""
        self._closed = True
        self._wake.set()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        self._set_ready()

    def count_dead_letter(self, source_topic: str) -> None:
        """One record went to the DLQ (acknowledged)."""
        if self._metrics is not None:
            self._metrics.dead_letters.labels(source_topic=source_topic).inc()

    @property
    def started(self) -> bool:
        return self._producer is not None

    @property
    def problem(self) -> str | None:
        """Why records cannot be acknowledged now, or None."""
        if self._closed:
            return "producer closed"
        if self._restart_reason is not None:
            return f"producer restarting after {self._restart_reason}"
        if self._producer is None:
            return "producer not started"
        if self._failing_since is not None:
            return f"no record acknowledged for {self._clock() - self._failing_since:.1f}s ({self._failure})"
        return None

    async def check(self, timeout_s: float = 1.0) -> str | None:
        """`problem`, or whether the broker answers a metadata request (a readiness probe)."""
        if (problem := self.problem) is not None or self._producer is None:
            return problem
        try:
            async with asyncio.timeout(timeout_s):
                await self._producer.client.fetch_all_metadata()
        except Exception as exc:
            return f"Kafka does not answer ({exc.__class__.__name__})"
        return None

    # ---- sending ---------------------------------------------------------------------------------------------
    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                   headers: list[tuple[str, bytes]] | None = None,
                   partition: int | None = None) -> asyncio.Future[RecordMetadata]:
        """Queue a record; the future resolves when the broker acknowledged it (or fails with its error)."""
        producer = self._producer
        if producer is None or self._restart_reason is not None:
            raise ProducerUnavailable(self.problem or "producer unavailable")
        observe = self._observe
        try:
            delivery: asyncio.Future[RecordMetadata] = await producer.send(
                topic, value, key=key, headers=headers, partition=partition)
        except KafkaError as exc:
            observe(_failed(exc))
            raise
        delivery.add_done_callback(observe)
        return delivery

    async def send_and_wait(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                            headers: list[tuple[str, bytes]] | None = None,
                            partition: int | None = None) -> RecordMetadata:
        """Send one record and wait for the broker's answer (errors are raised, not retried)."""
        return await (await self.send(topic, value, key, headers, partition))

    async def deliver(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                      headers: list[tuple[str, bytes]] | None = None) -> RecordMetadata:
        """Send one record and resend it until the broker acknowledges it, through outages and restarts.

        Raises ProducerUnavailable only once the producer is closed. A resend after a lost answer may write the
        record twice: use it for records whose consumers tolerate duplicates (all of this product's do).
        """
        delay = RESTART_BACKOFF_S[0]
        while True:
            try:
                return await self.send_and_wait(topic, value, key, headers)
            except KafkaError as exc:
                if self._closed:
                    raise ProducerUnavailable("producer closed") from exc
                log.warning("kafka_send_retrying", producer=self._name, topic=topic, error=exc.__class__.__name__,
                            delay_s=delay)
            await asyncio.sleep(delay)
            delay = min(RESTART_BACKOFF_S[1], delay * 2)

    # ---- supervision -----------------------------------------------------------------------------------------
    def _on_delivery(self, generation: int, delivery: asyncio.Future[Any]) -> None:
        """Follow every answer: success clears the failing state; a fatal error of this producer replaces it."""
        if delivery.cancelled():
            return
        exc = delivery.exception()
        if exc is None:
            if self._failing_since is not None and generation == self._generation:
                self._failing_since = self._failure = None
                self._set_ready()
            return
        if generation != self._generation:
            return  # a replaced producer's queued batches failing as it closes
        if isinstance(exc, FATAL_ERRORS):
            self._request_restart(exc.__class__.__name__)
        elif self._failing_since is None:
            self._failing_since, self._failure = self._clock(), exc.__class__.__name__
            self._set_ready()

    def _request_restart(self, reason: str) -> None:
        if self._restart_reason is None and not self._closed:
            self._restart_reason = reason
            self._set_ready()
            self._wake.set()

    async def _supervise(self) -> None:
        """Replace the producer when asked to (fatal error) or when sends have failed for `stuck_after_s`."""
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._wake.wait()
            self._wake.clear()
            if (self._restart_reason is None and self._failing_since is not None
                    and self._clock() - self._failing_since >= self._stuck_after_s):
                self._request_restart(f"no acknowledgement for {self._stuck_after_s:.0f}s")
            if self._restart_reason is not None and not self._closed:
                await self._restart()

    async def _restart(self) -> None:
        reason = self._restart_reason or "unknown"
        old, self._producer = self._producer, None
        self._generation += 1
        if old is not None:  # its queued records fail (or land) by themselves; their callers get the answer
            task = asyncio.get_running_loop().create_task(_close_quietly(old, CLOSE_TIMEOUT_S))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        log.warning("kafka_producer_restarting", producer=self._name, reason=reason)
        delay = RESTART_BACKOFF_S[0]
        while not self._closed:
            producer = self._factory()
            try:
                await producer.start()
            except (KafkaError, OSError) as exc:
                await _close_quietly(producer)
                log.warning("kafka_producer_start_failed", producer=self._name, error=exc.__class__.__name__,
                            retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(RESTART_BACKOFF_S[1], delay * 2)
                continue
            self._install(producer)
            self.restarts += 1
            if self._metrics is not None:
                self._metrics.restarts.labels(reason=_reason_label(reason)).inc()
            log.warning("kafka_producer_restarted", producer=self._name, reason=reason, restarts=self.restarts)
            return

    def _install(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._observe = functools.partial(self._on_delivery, self._generation)
        self._failing_since = self._failure = self._restart_reason = None
        self._set_ready()

    def _set_ready(self) -> None:
        if self._metrics is not None:
            self._metrics.ready.set(1 if self.problem is None else 0)


Sender: TypeAlias = "ManagedProducer | AIOKafkaProducer"  # CLI one-shots and narrow tests use a plain producer


async def deliver(producer: Sender, topic: str, value: bytes | None, key: bytes | None = None,
                  headers: list[tuple[str, bytes]] | None = None) -> RecordMetadata:
    """`ManagedProducer.deliver` (resend until acknowledged); a plain producer sends once and raises."""
    if isinstance(producer, ManagedProducer):
        return await producer.deliver(topic, value, key, headers)
    return await producer.send_and_wait(topic, value, key=key, headers=headers)


@dataclass(slots=True)
class _Sent:
    future: asyncio.Future[Any]
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    resend: asyncio.Task[None] | None = None


class Outbox:
    """Records sent and not yet known to be acknowledged; `flush` waits for them and resends the failed ones.

    For callers that send many records, then wait once before committing their input (the ingest's decisions,
    the mapping service's enrichments): a record the broker refused or never answered (an outage, a producer
    replaced mid-flight) is resent in send order until acknowledged, unless a later record for the same key
    already was (a resend must never land over newer content). Safe to flush from several tasks at once: each
    waits for everything sent before its call, and a failed record is resent once.
    """

    def __init__(self, producer: Sender) -> None:
        self._producer = producer
        self._pending: list[_Sent] = []
        self._last_resend: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._pending)

    async def send(self, topic: str, value: bytes | None, key: bytes | None,
                   headers: list[tuple[str, bytes]]) -> None:
        try:
            future = await self._producer.send(topic, value, key=key, headers=headers)
        except KafkaError as exc:  # e.g. the producer is being replaced: resent by flush
            future = _failed(exc)
        self._pending.append(_Sent(future, topic, key, value, headers))

    async def flush(self) -> None:
        """Return once every record sent before this call is acknowledged (raises only if the producer closed)."""
        pending = list(self._pending)
        if not pending:
            return
        for sent in pending:  # the broker answers a batch at once: one wait per batch, not a callback per record
            if not sent.future.done():
                await asyncio.wait((sent.future,))
        acknowledged_after: set[tuple[str, bytes | None]] = set()
        failed: list[_Sent] = []
        for sent in reversed(pending):
            if sent.resend is None and not _succeeded(sent.future):
                if (sent.topic, sent.key) not in acknowledged_after:
                    failed.append(sent)
            elif sent.resend is None and sent.key is not None:
                acknowledged_after.add((sent.topic, sent.key))
        if failed:
            failed.reverse()
            task = asyncio.get_running_loop().create_task(self._resend(failed, self._last_resend))
            self._last_resend = task
            for sent in failed:
                sent.resend = task
        for task in {id(p.resend): p.resend for p in pending if p.resend is not None}.values():
            await task
        done = set(map(id, pending))
        self._pending = [p for p in self._pending if id(p) not in done]

    async def _resend(self, failed: list[_Sent], previous: asyncio.Task[None] | None) -> None:
        """Resend `failed` one by one in send order, after an earlier flush's resends (same-key order holds)."""
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous
        log.warning("kafka_records_resent", records=len(failed), topic=failed[0].topic,
                    error=_error_name(failed[0].future))
        for sent in failed:
            await deliver(self._producer, sent.topic, sent.value, sent.key, sent.headers)


def _error_name(future: asyncio.Future[Any]) -> str:
    return "cancelled" if future.cancelled() else future.exception().__class__.__name__


def _succeeded(future: asyncio.Future[Any]) -> bool:
    return not future.cancelled() and future.exception() is None


def _failed(exc: BaseException) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    future.exception()  # retrieved: no "exception never retrieved" warning
    return future


def _reason_label(reason: str) -> str:
    return "stuck" if reason.startswith("no acknowledgement") else reason


async def _close_quietly(producer: AIOKafkaProducer, timeout_s: float = 5.0) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout_s):
            await producer.stop()

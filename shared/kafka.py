"""aiokafka wiring: the one place that builds Kafka clients, with the product's delivery guarantees.

Every client (producers, consumers, admin clients, `read_to_end` readers) gets `kafka_client_options`: the
bootstrap servers and the KAFKA_* TLS/SASL settings. A client whose start fails to bootstrap raises a typed
error saying why (`KafkaAuthenticationFailed`, `KafkaTLSFailed`, `KafkaUnreachable`).
Producers: acks=all, idempotence on, lz4 compression, a short linger so concurrent sends batch.
Consumers: manual commits after processing (at-least-once), starting from the earliest offset.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, KafkaConnectionError
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from shared.kafka_metrics import ConsumerLag
from shared.kafka_security import KafkaUnreachable, explain_bootstrap_failure, security_options
from shared.logging import get_logger
from shared.partitioner import Murmur2Partitioner
from shared.producer import ManagedProducer, ProducerMetrics
from shared.settings import Settings
from shared.topics import topic_name

log = get_logger("kafka")


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """Where and how every client connects: bootstrap servers plus TLS/SASL. Holds the password: never log it."""
    return {"bootstrap_servers": settings.bootstrap_servers, **security_options(settings)}


@contextlib.asynccontextmanager
async def _explained(options: Mapping[str, Any]) -> AsyncIterator[None]:
    """Turn aiokafka's bare "Unable to bootstrap" into an error that names the cause."""
    try:
        yield
    except KafkaConnectionError as exc:
        if isinstance(exc, KafkaUnreachable) or "Unable to bootstrap" not in str(exc):
            raise
        raise await explain_bootstrap_failure(options, exc) from exc


class Producer(AIOKafkaProducer):  # type: ignore[misc]  # aiokafka is untyped: its base is Any
    """An AIOKafkaProducer whose failed start says why (authentication, TLS, network)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._connect_options = options

    async def start(self) -> None:
        async with _explained(self._connect_options):
            await super().start()


class Consumer(AIOKafkaConsumer):  # type: ignore[misc]  # aiokafka is untyped: its base is Any
    """An AIOKafkaConsumer whose failed start says why (authentication, TLS, network), and which remembers the
    offsets it committed (`committed_offsets`, next offset to read per partition) for `ConsumerLag`."""

    def __init__(self, *topics: str, **options: Any) -> None:
        super().__init__(*topics, **options)
        self._connect_options = options
        self.group_id: str | None = options.get("group_id")
        self.committed_offsets: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        async with _explained(self._connect_options):
            await super().start()

    async def stop(self) -> None:
        """Close as aiokafka does, and finish closing when its fetcher lets the cancellation of one of its own
        fetch tasks escape: aiokafka 0.14's `Fetcher.close` cancels and awaits each pending fetch, and a fetch that
        had failed (a broker going away) and was sleeping its retry backoff re-raises that CancelledError, which
        skips the rest of the close and reaches the caller as if it had been cancelled. Seen as a mapping service
        that died silently at start-up: `read_to_end`'s reader stopped while the broker was down."""
        try:
            await super().stop()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise  # the caller itself is being cancelled
            log.warning("consumer_close_completed", reason="a cancelled fetch's CancelledError escaped aiokafka")
            pending = [t for t in getattr(self._fetcher, "_pending_tasks", ()) if not t.done()]
            for fetch in pending:
                fetch.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await self._client.close()

    async def commit(self, offsets: Mapping[TopicPartition, Any] | None = None) -> None:
        await super().commit(offsets)
        if offsets is None:  # aiokafka committed every consumed position
            offsets = {tp: await self.position(tp) for tp in self.assignment()}
        for tp, offset in offsets.items():
            self.committed_offsets[tp] = int(offset[0] if isinstance(offset, tuple) else offset)


class AdminClient(AIOKafkaAdminClient):  # type: ignore[misc]  # aiokafka is untyped: its base is Any
    """An AIOKafkaAdminClient whose failed start says why (authentication, TLS, network)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._connect_options = options

    async def start(self) -> None:
        async with _explained(self._connect_options):
            await super().start()


def create_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """An idempotent, acks=all producer (not started)."""
    options: dict[str, Any] = {
        **kafka_client_options(settings),
        "acks": "all",
        "enable_idempotence": True,
        "compression_type": "lz4",
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "max_request_size": 4 * 1024 * 1024,
        "request_timeout_ms": 30_000,
        "client_id": "shopsync-producer",
        "partitioner": Murmur2Partitioner(),
    }
    options.update(overrides)
    return Producer(**options)


def create_managed_producer(settings: Settings, name: str, registry: CollectorRegistry | None = None,
                            **overrides: Any) -> ManagedProducer:
    """A long-lived service producer (not started) that replaces itself when it wedges; metrics on `registry`."""
    return ManagedProducer(lambda: create_producer(settings, client_id=f"shopsync-{name}", **overrides), name=name,
                           stuck_after_s=settings.shopsync_producer_stuck_after_s,
                           metrics=ProducerMetrics(registry) if registry is not None else None)


#: For a consumer that reads a busy topic for the few records it acts on, none of them urgent to the second: the
#: broker answers its fetches once 64 KiB or half a second has gathered, not every few records. Answering every few
#: records, the stores owner's authorization feed cost 0.124 of a core at 500 webhooks/s (247 µs per webhook);
#: batched, 0.007 (14 µs).
BATCHED_FETCHES: dict[str, Any] = {"fetch_min_bytes": 64 * 1024, "fetch_max_wait_ms": 500}


def create_consumer(settings: Settings, group_id: str | None, *topics: str, lag: ConsumerLag | None = None,
                    **overrides: Any) -> AIOKafkaConsumer:
    """A consumer with manual commits (call `commit()` after outputs are acknowledged); `topics` are base names.
    With `lag`, its group's lag is on that collector's registry (`kafka_consumer_lag`)."""
    options: dict[str, Any] = {
        **kafka_client_options(settings),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        "max_poll_records": 500,
        "fetch_max_wait_ms": 100,
        "client_id": f"shopsync-{group_id or 'reader'}",
    }
    options.update(overrides)
    names = [topic_name(t, settings.shopsync_topic_prefix) for t in topics]
    consumer = Consumer(*names, **options)
    if lag is not None:
        lag.watch(consumer)
    return consumer


async def commit_owned(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int] | None = None) -> bool:
    """Commit `offsets` (default: every consumed position) for the partitions this member still owns.

    aiokafka rebalances beside the consuming loop, so a commit can be overtaken by one: its partitions may belong
    to another member now, which resumes from their last commit. Such a commit is skipped, not retried (retrying
    would never succeed for a partition that moved away); its records are redelivered, which every consumer here
    handles. False when nothing was committed.
    """
    if offsets is not None:
        owned = consumer.assignment()
        offsets = {tp: offset for tp, offset in offsets.items() if tp in owned}
        if not offsets:
            return False
    try:
        await consumer.commit(offsets)
    except CommitFailedError:
        log.info("commit_skipped_after_rebalance", partitions=len(offsets or consumer.assignment()))
        return False
    return True


def create_admin(settings: Settings, **overrides: Any) -> AIOKafkaAdminClient:
    """An admin client (not started)."""
    return AdminClient(**{**kafka_client_options(settings), "client_id": "shopsync-admin", **overrides})


async def partitions_of(consumer: AIOKafkaConsumer, name: str) -> set[int]:
    """Partition numbers of topic `name` (real name), refreshing metadata once if the topic is not known yet."""
    found = consumer.partitions_for_topic(name)
    if found is None:
        await consumer._client.force_metadata_update()  # the first metadata fetch may predate the topic
        found = consumer.partitions_for_topic(name)
    return set(found or ())


async def read_to_end(settings: Settings, topic: str, partitions: Iterable[int] | None = None,
                      start: Mapping[int, int] | None = None) -> AsyncIterator[ConsumerRecord]:
    """Yield every record of `topic` (base name) from the beginning up to its end offsets at call time.

    Used to materialize compacted state topics (stores, mappings, open orders) before a service starts work;
    `partitions` restricts it to those partitions (a consumer restoring the state of what it was assigned), and
    `start` reads a partition from that offset instead of the beginning (the tail after a local checkpoint).
    """
    consumer = create_consumer(settings, None, enable_auto_commit=False)
    await consumer.start()
    try:
        name = topic_name(topic, settings.shopsync_topic_prefix)
        existing = await partitions_of(consumer, name)
        wanted = set(existing) if partitions is None else set(existing) & set(partitions)
        tps = [TopicPartition(name, p) for p in sorted(wanted)]
        if not tps:
            return
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        first = {tp: 0 for tp in tps}
        for tp in tps:
            if start is not None and tp.partition in start:
                first[tp] = start[tp.partition]
                consumer.seek(tp, first[tp])
        end = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if end[tp] > first[tp]}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, records in batch.items():
                for record in records:
                    if record.offset < end[tp]:
                        yield record
            for tp in list(remaining):
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()


async def offset_ranges(settings: Settings, topics: Iterable[str], partitions: Iterable[int],
                        ) -> dict[str, dict[int, tuple[int, int]]]:
    """Per topic (base name), (log start offset, end offset) per partition, read by one client; a missing
    partition is left out."""
    consumer = create_consumer(settings, None, enable_auto_commit=False)
    await consumer.start()
    try:
        ranges: dict[str, dict[int, tuple[int, int]]] = {}
        for topic in topics:
            name = topic_name(topic, settings.shopsync_topic_prefix)
            existing = await partitions_of(consumer, name)
            tps = [TopicPartition(name, p) for p in sorted(set(partitions) & existing)]
            begin, end = (await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)) if tps else ({}, {})
            ranges[topic] = {tp.partition: (int(begin[tp]), int(end[tp])) for tp in tps}
        return ranges
    finally:
        await consumer.stop()

"""The stores owner: the one writer of `shopsync.stores`.

It consumes `shopsync.store-commands` in consumer group `shopsync-stores`. Commands are keyed by the record they
are about, so each record's commands are in one partition, in order, and any number of instances share the work
with each record written by exactly one of them (the one assigned its partition): no service discovery, no lock.
Partitions are worked on side by side, each one command at a time, against the whole table (`OwnerView`, with this
instance's own writes applied as they are acknowledged). Every command gets one answer on `shopsync.store-results`
(key = command id), then its offset is committed; a command redelivered after a stop is recognised (answered, or
its write already on the table) and not applied twice; a `link`, which takes several steps, carries on from the
last one it wrote (`linking`). It also turns TikTok's authorization webhooks into commands
(`AuthorizationFeed`).

Use as `async with StoresService(...) as service: await service.run()`; the service starts and stops the
collaborators it is given (producer, consumers, TikTok client).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry
from structlog.contextvars import bound_contextvars

from services.stores.answers import Answers
from services.stores.context import OwnerContext
from services.stores.decide import answer
from services.stores.handlers import apply_command
from services.stores.linking import attached, use_up
from services.stores.metrics import StoresMetrics
from services.stores.view import OwnerView, end_offsets
from services.stores.webhooks import AuthorizationFeed
from services.stores.writer import RecordWriter
from shared.dlq import send_to_dlq
from shared.kafka import commit_owned
from shared.logging import get_logger
from shared.producer import Sender
from shared.settings import Settings
from shared.stores.commands import (
    APPLIED,
    FAILED,
    AttachLink,
    BadCommand,
    CommandResult,
    Link,
    StoreCommand,
    command_id_of,
    parse_command,
    publish_command,
)
from shared.stores.crypto import TokenCipher
from shared.stores.table import TableNotUpdated
from shared.tiktok.client import TikTokClient
from shared.topics import STORE_COMMANDS, TIKTOK_WEBHOOKS, topic_name

log = get_logger("stores")
GROUP = "shopsync-stores"
WEBHOOKS_GROUP = "shopsync-stores-webhooks"
CATCH_UP_S = 30.0  # one attempt at reading the table to its end on an assignment (retried until it succeeds)
RETRY_S = 1.0


class StoresService:
    def __init__(self, settings: Settings, *, producer: Sender, consumer: AIOKafkaConsumer, tiktok: TikTokClient,
                 webhooks: AIOKafkaConsumer, cipher: TokenCipher | None = None, metrics: StoresMetrics | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.producer = producer
        self.metrics = metrics or StoresMetrics()
        self.view = OwnerView()
        self.metrics.watch_stores(self.view)
        self.ready = asyncio.Event()  # joined the group with its partitions' state caught up
        self._consumer = consumer
        self._webhooks = webhooks
        self._tiktok = tiktok
        self._clock = clock
        self._answers = Answers(producer, settings)
        cipher = cipher or TokenCipher(settings.shopsync_secret_key.get_secret_value())
        self._ctx = OwnerContext(self.view, RecordWriter(producer, settings, self.view, clock), tiktok, cipher,
                                 self._forward, self.metrics, clock)
        self._feed = AuthorizationFeed(settings, webhooks, producer, self.metrics)
        self._lock = asyncio.Lock()  # held while a batch is applied; a revocation waits for it
        self._generation = 0  # bumped on every revocation
        self._restored = asyncio.Event()
        self._stop = asyncio.Event()
        self._follower: asyncio.Task[None] | None = None

    # ---- life ------------------------------------------------------------------------------------------------
    async def __aenter__(self) -> StoresService:
        await self.producer.start()
        try:
            await self.view.load(self.settings)
            self._follower = asyncio.get_running_loop().create_task(self.view.follow(self.settings, self._stop))
            prefix = self.settings.shopsync_topic_prefix
            self._consumer.subscribe([topic_name(STORE_COMMANDS, prefix)], listener=_Rebalance(self))
            await self._consumer.start()
            self._webhooks.subscribe([topic_name(TIKTOK_WEBHOOKS, prefix)], listener=self._feed)
            await self._webhooks.start()
        except BaseException:
            await self._close()
            raise
        log.info("stores_owner_started", stores=len(self.view.stores), pending=len(self.view.pending))
        return self

    async def run(self) -> None:
        """Apply commands and forward authorization webhooks until `stop()` (or cancellation)."""
        assert self._follower is not None, "run() outside `async with`"
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._watch(self._follower))
            tasks.create_task(self._consume())
            tasks.create_task(self._feed.run(self._stop))

    def stop(self) -> None:
        self._stop.set()

    @property
    def registry(self) -> CollectorRegistry:
        return self.metrics.registry

    @property
    def partitions(self) -> frozenset[int]:
        """The partitions of `shopsync.store-commands` this instance writes the records of now."""
        return frozenset(tp.partition for tp in self._consumer.assignment())

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await self._close()
        log.info("stores_owner_stopped")

    async def _close(self) -> None:
        # the producer first: everything written or answered is on the topics before this instance leaves the group
        await self.producer.stop()
        await self._webhooks.stop()
        await self._consumer.stop()
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError, KafkaError):
                await self._follower
        await self._tiktok.aclose()

    async def _watch(self, follower: asyncio.Task[None]) -> None:
        """A follower that stopped leaves the view stale: end the run with its error."""
        await follower

    # ---- commands --------------------------------------------------------------------------------------------
    async def _consume(self) -> None:
        while not self._stop.is_set():
            batches = await self._consumer.getmany(timeout_ms=200, max_records=200)
            if not batches:
                continue
            fetched_in = self._generation
            await self._restored.wait()  # records of new partitions wait until the view holds their writes
            async with self._lock:
                if fetched_in != self._generation:
                    continue  # a rebalance overtook this batch: its partitions' owner gets it again
                owned = self._consumer.assignment()
                lanes = {tp: records for tp, records in batches.items() if tp in owned}
                async with asyncio.TaskGroup() as tasks:  # partitions side by side, each in order
                    for records in lanes.values():
                        tasks.create_task(self._apply_lane(records))
            # outside the lock: a commit overtaken by a rebalance is skipped, and the new owner knows the answers
            await commit_owned(self._consumer, {tp: rs[-1].offset + 1 for tp, rs in lanes.items()})

    async def _apply_lane(self, records: list[ConsumerRecord]) -> None:
        for record in records:
            await self._apply_record(record)

    async def _apply_record(self, record: ConsumerRecord) -> None:
        try:
            command = parse_command(record.value)
        except BadCommand as exc:
            await self._refuse_undecodable(record, exc)
            return
        if command.reply_to in self._answers:
            self.metrics.redelivered.inc()  # applied and answered before a stop or a rebalance
            if isinstance(command, Link):
                await use_up(self._ctx, command)  # stopped between its answer and its tombstone
            return
        result: CommandResult | None
        written = self.view.last_command.get(command.key) == command.command_id
        if written:
            self.metrics.redelivered.inc()
        if written and not isinstance(command, Link):  # written, then stopped before the answer: answer now
            record = self.view.record(command.key)
            result = (attached(command, record) if isinstance(command, AttachLink) and record is not None
                      else answer(command, APPLIED, record=record))
        else:  # a link written before a stop carries on from what its pending record says (`linking.link`)
            with bound_contextvars(command_id=command.command_id, kind=command.kind, key=command.key,
                                   requested_by=command.requested_by):
                result = await self._apply_guarded(command)
        if result is not None:
            await self._answers.publish(result)
            if isinstance(command, Link):
                await use_up(self._ctx, command)
            self.metrics.commands.labels(kind=command.kind, status=result.status).inc()
            log.info("store_command_answered", command_id=command.command_id, kind=command.kind, key=command.key,
                     status=result.status, reason=result.reason, revision=result.revision)

    async def _apply_guarded(self, command: StoreCommand) -> CommandResult | None:
        """`apply_command`; a command that fails unexpectedly is answered `failed` (internal_error) and logged, so it
        stops neither its partition nor the service (Kafka errors still end the run: nothing is committed)."""
        try:
            return await apply_command(self._ctx, command)
        except KafkaError:
            raise
        except Exception as exc:
            log.exception("store_command_failed", error=exc.__class__.__name__)
            return answer(command, FAILED, "internal_error", f"the stores owner could not apply it: "
                          f"{exc.__class__.__name__} (see its log)", self.view.record(command.key))

    async def _refuse_undecodable(self, record: ConsumerRecord, problem: BadCommand) -> None:
        self.metrics.undecodable.inc()
        log.error("record_dead_lettered", reason="undecodable_store_command", detail=str(problem),
                  partition=record.partition, offset=record.offset)
        await send_to_dlq(self.producer, self.settings, record, f"undecodable_store_command: {problem}", self._clock())
        command_id = command_id_of(record.value)
        if command_id is not None and command_id not in self._answers:  # its requester waits: tell it at once
            await self._answers.publish(CommandResult(command_id=command_id, kind="unknown",
                                                      key=(record.key or b"").decode("utf-8", "replace"),
                                                      status=FAILED, reason="invalid", message=str(problem)))

    async def _forward(self, command: StoreCommand) -> None:
        await publish_command(self.producer, self.settings, command)

    # ---- rebalances ------------------------------------------------------------------------------------------
    async def partitions_revoked(self) -> None:
        self._restored.clear()
        async with self._lock:  # the batch in hand is written and answered first
            self._generation += 1

    async def partitions_assigned(self) -> None:
        self._restored.clear()
        await self.restore()
        self._restored.set()
        self.ready.set()

    async def restore(self) -> None:
        """Before commands of newly assigned partitions are applied: read the table up to its end offsets of now
        (the previous owner's writes) and the answers given so far. Retried until it succeeds or the service stops."""
        while not self._stop.is_set():
            try:
                await self.view.wait_read_to(await end_offsets(self.settings), CATCH_UP_S)
                answered = await self._answers.restore()
            except (KafkaError, OSError, TableNotUpdated) as exc:
                log.warning("stores_restore_retrying", error=f"{exc.__class__.__name__}: {exc}", retry_in_s=RETRY_S)
                await asyncio.sleep(RETRY_S)
                continue
            log.info("stores_partitions_restored", stores=len(self.view.stores), answered=answered)
            return


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped: its base is Any
    def __init__(self, service: StoresService) -> None:
        self._service = service

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._service.partitions_revoked()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._service.partitions_assigned()

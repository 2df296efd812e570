"""The enrichment loop: `orders.ingested` → `orders.enriched`, and re-emission when mappings change.

One lock serializes "enrich + publish": a mapping change applied while an order is being enriched waits for that
publish, then re-enriches the order with the new table, so no change is lost and revisions stay in order.
Per-partition state is restored on assignment from the compacted topics, the way Kafka Streams restores a store.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sqlite3
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue
from prometheus_client import CollectorRegistry, Counter

from services.mapping.enrich import CAUSES, Cause, content_hash, enrich
from services.mapping.state import Emitted, OrderState
from services.mapping.store import Checkpoint
from shared.dlq import send_to_dlq
from shared.envelope import EventHeaders, Headers, rfc3339
from shared.kafka import commit_owned, offset_ranges, read_to_end
from shared.kafka_metrics import ConsumerLag
from shared.logging import get_logger
from shared.mapping_table import MappingTable
from shared.mappings import Mapping, split_mapping_key
from shared.orders import ACTIVE, CE_TYPE_ENRICHED, CE_TYPE_WITHDRAWN, IngestedOrder
from shared.producer import Outbox, Sender
from shared.settings import Settings
from shared.telemetry import child_span, tracer
from shared.topics import MAPPINGS, ORDERS_ENRICHED, ORDERS_INGESTED, topic_name
from shared.tracing import child_traceparent

log = get_logger("mapping")
GROUP = "shopsync-mapping"
REPLAY_ID = "replay_id"
REPLAY_FORCE = "shopsync_replay_force"
CE_SOURCE = "shopsync/mapping"
_CAUSE_HEADERS = {cause: ("shopsync_cause", cause.encode()) for cause in CAUSES}
ENRICHED_CHECKPOINT_EVERY_S = 5.0  # how often a checkpoint re-reads the `orders.enriched` ends (one round trip)
ENRICHED_READ_TIMEOUT_S = 5.0
SAVE_EVERY_S = 0.5  # the consumed batches' rows are saved together at most this often (a commit costs ~50 ms)


class MappingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.emitted = Counter("mapping_enriched_emitted_total", "Enriched records published", ["cause"],
                               registry=self.registry)
        self.unchanged = Counter("mapping_unchanged_total", "Re-enrichments with no change (not published)",
                                 registry=self.registry)
        self.dlq = Counter("mapping_dlq_total", "Undecodable records sent to the DLQ", registry=self.registry)
        self.unmapped = Counter("mapping_unmapped_lines_total", "Lines of published enrichments without a product "
                                "code, by mapping_status (unmapped, missing_seller_sku)", ["status"],
                                registry=self.registry)
        self.lag = ConsumerLag(self.registry)  # kafka_consumer_lag{group, topic}
        self._emitted_by_cause: dict[str, Counter] = {}
        self._unmapped_by_status: dict[str, Counter] = {}
        for status in ("unmapped", "missing_seller_sku"):  # both series exist from the start (at 0)
            self._unmapped_by_status[status] = self.unmapped.labels(status=status)

    def count_emitted(self, cause: str, content: dict[str, Any] | None = None) -> None:
        """`emitted{cause}` += 1, and the unmapped lines of an incomplete `content`, with the label children
        cached (`labels()` cost ~7% of enrichment CPU)."""
        if (child := self._emitted_by_cause.get(cause)) is None:
            child = self._emitted_by_cause[cause] = self.emitted.labels(cause=cause)
        child.inc()
        if content is not None and content.get("mapping_state") == "incomplete":
            for line in content["lines"]:
                if (status := line["mapping_status"]) != "mapped":
                    if (counter := self._unmapped_by_status.get(status)) is None:
                        counter = self._unmapped_by_status[status] = self.unmapped.labels(status=status)
                    counter.inc()


class MappingService:
    """Use as `async with MappingService(...) as service: await service.run()`; `stop()` ends `run()`. It owns what
    it is given: `async with` starts and stops the producer and the consumer (whose group is the service's). The
    enrichment methods (`on_order_record`, `on_mapping_change`) also work on a service that was never started."""

    def __init__(self, settings: Settings, *, producer: Sender, consumer: AIOKafkaConsumer,
                 table: MappingTable | None = None, state: OrderState | None = None,
                 metrics: MappingMetrics | None = None) -> None:
        self.settings = settings
        self.producer = producer
        self.consumer = consumer
        self.table = table or MappingTable()
        self.state = state or OrderState()
        self.metrics = metrics or MappingMetrics()
        self.lock = asyncio.Lock()
        self.ready = asyncio.Event()  # joined the group and restored what it owns
        self._enriched_topic = topic_name(ORDERS_ENRICHED, settings.shopsync_topic_prefix)
        self._enriched_events = EventHeaders(CE_SOURCE, CE_TYPE_ENRICHED)
        self._withdrawn_events = EventHeaders(CE_SOURCE, CE_TYPE_WITHDRAWN)
        self._publish_attributes: dict[str, dict[str, AttributeValue]] = {
            cause: {"messaging.destination.name": self._enriched_topic, "shopsync.cause": cause} for cause in CAUSES}
        self._outbox = Outbox(producer)
        self._stop = asyncio.Event()
        self.generation = 0  # bumped on every revocation: records fetched before it are no longer ours to process
        self.restored = asyncio.Event()  # the state of the assigned partitions is loaded (cleared while restoring)
        self.restore_reads = {ORDERS_INGESTED: 0, ORDERS_ENRICHED: 0}  # distinct keys restores read per topic
        self._enriched_read_at = 0.0
        self._saved_at = 0.0
        self._consumed: dict[int, int] = {}  # next orders.ingested offsets processed since the last save

    @property
    def registry(self) -> CollectorRegistry:
        return self.metrics.registry

    # ---- lifecycle -------------------------------------------------------------------------------------------
    async def __aenter__(self) -> MappingService:
        """Load the mapping table and join the group (the partitions' state is restored as they are assigned)."""
        await self.producer.start()
        try:
            await self.table.load(self.settings)
            self.consumer.subscribe([topic_name(ORDERS_INGESTED, self.settings.shopsync_topic_prefix)],
                                    listener=_Rebalance(self))
            await self.consumer.start()
        except BaseException:
            await self._close()
            raise
        return self

    async def run(self) -> None:
        """Consume orders and follow mapping changes until `stop()`."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.table.follow(self.settings, self._stop, self._follow_mapping_change))
            tasks.create_task(self._consume(self.consumer, self._stop))

    def stop(self) -> None:
        self._stop.set()

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        self.ready.clear()
        await self._close()

    async def _close(self) -> None:
        with contextlib.suppress(KafkaError):  # what was enriched is on the topic before the group moves on
            await self.checkpoint({}, read_enriched=True)  # a restart reads only what others wrote after this
        await self.consumer.stop()
        await self.producer.stop()
        self.state.store.compact().result()  # written, and the next start reads the file, not a long WAL
        self.state.store.close()  # and free for the next instance on this host

    async def _consume(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=1000)
            if not batches:
                continue
            fetched_in = self.generation
            # aiokafka hands out records of new partitions while on_partitions_assigned is still restoring their
            # state: enriching them before it is loaded would re-emit revisions the topic already has.
            await self.restored.wait()
            for records in batches.values():
                for record in records:
                    if not await self.on_order_record(record, fetched_in):
                        break
            if self.generation != fetched_in:
                continue  # a rebalance overtook this batch: its rest is redelivered to the partitions' owner
            # the store first: a store ahead of the committed offset only sees the batch again (idempotent)
            await self.checkpoint({tp.partition: records[-1].offset + 1 for tp, records in batches.items()
                                   if records})
            await commit_owned(consumer)

    async def flush(self) -> None:
        """Wait until every enrichment sent so far is acknowledged (failed ones are resent, in order)."""
        await self._outbox.flush()

    # ---- orders ----------------------------------------------------------------------------------------------
    async def on_order_record(self, record: ConsumerRecord, generation: int | None = None) -> bool:
        """Enrich one `orders.ingested` record; False (nothing done) if a rebalance since `generation` took it away.

        aiokafka runs rebalances beside the consuming loop, so a batch fetched before a revocation may still be
        in hand after its partitions were dropped and restored: processing it then would emit a revision the
        restored state does not know about (a duplicate revision number).
        """
        if generation is not None and generation != self.generation:
            return False
        value = record.value or b""
        try:
            order = IngestedOrder.from_dict(orjson.loads(value))
        except (ValueError, KeyError, TypeError) as exc:
            self.metrics.dlq.inc()
            log.error("record_dead_lettered", reason="undecodable_order", offset=record.offset,
                      partition=record.partition)
            await send_to_dlq(self.producer, self.settings, record,
                              f"undecodable_order: {exc.__class__.__name__}: {exc}", time.time())
            return True
        received, replay_id, force = _read_headers(record.headers)
        # no log line is written while a record is enriched: its trace, shop and order are not bound to the log
        # context (binding them for nothing cost ~2.3 us, ~5% of the record's CPU)
        with child_span("consume", received, SpanKind.CONSUMER,
                        {"messaging.destination.name": record.topic, "messaging.kafka.offset": record.offset}
                        if tracer() is not None else None) as own:
            return await self._enrich_record(order, record.partition, own or received, replay_id, generation,
                                             force=force, doc=value)

    async def _enrich_record(self, order: IngestedOrder, partition: int, traceparent: str | None,
                             replay_id: str | None, generation: int | None, force: bool = False,
                             doc: bytes | None = None) -> bool:
        async with self.lock:
            if generation is not None and generation != self.generation:
                return False  # revoked while this record waited for the lock
            if self.state.is_older(order):
                return True  # a redelivered older version: the newer one is already reflected
            self.state.put(order, partition, doc)
            if replay_id:  # `shopsync replay` re-drove this order: re-enrich with today's mappings
                await self.emit(order, "replay", traceparent, [(REPLAY_ID, replay_id)], force=force)
            else:
                await self.emit(order, "order_update", traceparent)
            return True

    async def emit(self, order: IngestedOrder, cause: Cause, traceparent: str | None = None,
                   extra_headers: list[tuple[str, str]] | None = None, force: bool = False) -> bool:
        """Enrich with today's mappings and publish if the content changed (call with the lock held)."""
        key = order.key
        content = enrich(order, self.table.mappings)
        digest = content_hash(content)
        last = self.state.emitted.get(key)
        if last is not None and last.content_hash == digest and not force:
            self.metrics.unchanged.inc()
            return False
        revision = (last.revision if last else 0) + 1
        now = rfc3339(time.time())
        content["revision"], content["cause"], content["enriched_at"] = revision, cause, now
        value = orjson.dumps(content)
        events = self._enriched_events if order.lifecycle == ACTIVE else self._withdrawn_events
        with child_span("publish", traceparent, SpanKind.PRODUCER, self._publish_attributes[cause]) as own:
            headers = [_CAUSE_HEADERS[cause], ("traceparent", (own or child_traceparent(traceparent)).encode())]
            if extra_headers:
                headers.extend((name, text.encode()) for name, text in extra_headers)
            await self._outbox.send(self._enriched_topic, value, key.encode(),
                                    events.headers(f"{key}:r{revision}", now, key, headers))
        self.state.emitted[key] = Emitted(revision, digest)
        self.metrics.count_emitted(cause, content)
        return True

    # ---- mapping changes -------------------------------------------------------------------------------------
    async def on_mapping_change(self, key: str) -> int:
        """Re-emit every affected open order in the partitions this instance owns; returns how many changed."""
        shop_id, seller_sku = split_mapping_key(key)
        async with self.lock:
            offset = self.table.offset_of(key)  # what the re-checked enrichments reflect (at least)
            changed = 0
            for order in self.state.affected(shop_id, seller_sku):
                if await self.emit(order, "mapping_change", extra_headers=[("shopsync_mapping_key", key)]):
                    changed += 1
            await self.flush()
            self.state.save(mapping_seen={key: offset})
        if changed:
            log.info("orders_reemitted", mapping_key=key, orders=changed)
        return changed

    async def _follow_mapping_change(self, key: str) -> None:
        """`on_mapping_change` as `MappingTable.follow` calls it (its callback type returns None)."""
        await self.on_mapping_change(key)

    async def write_mapping(self, key: str, mapping: Mapping | None) -> None:
        """Publish a mapping (None = tombstone), acked, and apply it here at once (the follower then no-ops)."""
        topic = topic_name(MAPPINGS, self.settings.shopsync_topic_prefix)
        value = orjson.dumps(mapping.to_dict()) if mapping is not None else None
        written = await self.producer.send_and_wait(topic, value, key=key.encode())
        if self.table.apply(key, mapping, written.offset):
            await self.on_mapping_change(key)

    # ---- restore ---------------------------------------------------------------------------------------------
    async def restore(self, partitions: set[int]) -> None:
        """Load the state of `partitions`: from the local store plus the topics' tails after its checkpoint when
        the checkpoint is still within the topics' retention, else from the topics in full."""
        try:
            checkpoints = self.state.store.checkpoints(partitions)
        except sqlite3.DatabaseError as exc:  # a store damaged after it was opened: the topics are the truth
            log.error("state_store_unreadable", error=str(exc))
            checkpoints = {}
        ranges = await offset_ranges(self.settings, (ORDERS_INGESTED, ORDERS_ENRICHED), partitions)
        ingested, enriched = ranges[ORDERS_INGESTED], ranges[ORDERS_ENRICHED]
        warm = {p for p, c in checkpoints.items() if _within(c.ingested, ingested.get(p))
                and _within(c.enriched, enriched.get(p))}
        ends = {p: Checkpoint(ingested.get(p, (0, 0))[1], enriched.get(p, (0, 0))[1]) for p in partitions}
        if warm:
            try:
                await self._restore_from_store(warm, checkpoints, ends)
            except sqlite3.DatabaseError as exc:
                log.error("state_store_unreadable", error=str(exc), partitions=sorted(warm))
                await self.flush()  # the full restore reads what was re-emitted so far
                self.state.drop_partitions(warm)
                warm = set()
        if partitions - warm:
            await self._restore_in_full(partitions - warm, ends)
        # the restored state lives as long as the partitions are held: keep it out of every later collection (at
        # 100,000 orders their first walk, ~0.4 s, landed among the records consumed next; reference counting
        # still frees what a revocation drops)
        gc.freeze()

    async def _restore_in_full(self, partitions: set[int], ends: dict[int, Checkpoint]) -> None:
        """Rebuild the state of `partitions` from the compacted topics (and rewrite it in the store), then re-emit
        orders whose enrichment changed while nobody owned them."""
        latest = await self._latest_orders(partitions)
        emitted = await self._emissions(partitions)
        async with self.lock:
            seen = self.table.offsets()  # before any emission: a mapping applied later is re-checked later
            self.state.forget(partitions)
            for key, (partition, found) in emitted.items():  # an emission may have raced the read: keep the newest
                self.state.merge_emitted(key, partition, found)
            reemitted = 0
            for n, (order, partition) in enumerate(latest.values()):
                if n % 10_000 == 0:
                    await asyncio.sleep(0)  # a million orders: let heartbeats and fetches run
                if self.state.is_older(order):
                    continue
                self.state.put(order, partition)
                if order.key in emitted and await self.emit(order, "mapping_change"):
                    reemitted += 1
            await self.flush()
            self.state.held |= partitions
            await self.state.save_gradually(checkpoints={p: ends[p] for p in partitions}, mapping_seen=seen,
                                            seen_in=partitions, full_mapping_seen=True)
            self.state.store.compact()
        log.info("partitions_restored", partitions=sorted(partitions), source="topics", orders=len(latest),
                 open_orders=sum(1 for o, _ in latest.values() if o.lifecycle == ACTIVE), reemitted=reemitted)

    async def _restore_from_store(self, partitions: set[int], checkpoints: dict[int, Checkpoint],
                                  ends: dict[int, Checkpoint]) -> None:
        """Load `partitions` from the store, apply the topics' tails after the checkpoint, and re-check the orders
        that changed: those in the tails, and those affected by mappings that changed since the store saw them."""
        latest = await self._latest_orders(partitions, {p: c.ingested for p, c in checkpoints.items()})
        emitted = await self._emissions(partitions, {p: c.enriched for p, c in checkpoints.items()})
        async with self.lock:
            table = self.table.offsets()  # before any emission, as in the full restore
            rows = await self.state.load(partitions)
            for key, (partition, found) in emitted.items():
                self.state.merge_emitted(key, partition, found)
            recheck: dict[str, tuple[IngestedOrder, int]] = {}
            for order, partition in latest.values():
                if not self.state.is_older(order):
                    self.state.put(order, partition)
                    recheck[order.key] = (order, partition)
            changed: dict[str, set[int]] = {}
            for partition in partitions:  # mappings changed since this partition's enrichments were stored
                for key in _changed_mappings(self.state.store.mapping_seen(partition), table):
                    changed.setdefault(key, set()).add(partition)
            for key, where in changed.items():
                for order in self.state.affected(*split_mapping_key(key)):
                    if self.state.partition_of.get(order.key) in where:
                        recheck.setdefault(order.key, (order, self.state.partition_of[order.key]))
            # emissions another instance made while it owned the partition: re-check them against today's table
            for order, partition in self.state.open_orders(k for k in emitted if k not in recheck):
                recheck[order.key] = (order, partition)
            reemitted = 0
            for order, _ in recheck.values():
                if order.key in self.state.emitted and await self.emit(order, "mapping_change"):
                    reemitted += 1
            await self.flush()
            self.state.save(checkpoints={p: ends[p] for p in partitions},
                            mapping_seen={k: table.get(k, -1) for k in changed}, seen_in=partitions)
        log.info("partitions_restored", partitions=sorted(partitions), source="store", stored_orders=rows,
                 tail_orders=len(latest), tail_emissions=len(emitted), mappings_changed=len(changed),
                 rechecked=len(recheck), reemitted=reemitted)

    async def _latest_orders(self, partitions: set[int], start: dict[int, int] | None = None,
                             ) -> dict[str, tuple[IngestedOrder, int]]:
        """The newest version of every order on `orders.ingested` (from `start`), with its partition."""
        latest: dict[str, tuple[IngestedOrder, int]] = {}
        async for record in read_to_end(self.settings, ORDERS_INGESTED, partitions, start):
            try:
                order = IngestedOrder.from_dict(orjson.loads(record.value or b""))
            except (ValueError, KeyError, TypeError):
                continue  # the consumer dead-letters it when it reaches it
            kept = latest.get(order.key)
            if kept is None or kept[0].order_version <= order.order_version:
                latest[order.key] = (order, record.partition)
        self.restore_reads[ORDERS_INGESTED] += len(latest)
        return latest

    async def _emissions(self, partitions: set[int], start: dict[int, int] | None = None,
                         ) -> dict[str, tuple[int, Emitted]]:
        """The last emitted revision and content hash per key on `orders.enriched` (from `start`)."""
        emitted: dict[str, tuple[int, Emitted]] = {}
        async for record in read_to_end(self.settings, ORDERS_ENRICHED, partitions, start):
            if record.key is None or record.value is None:
                continue
            try:
                doc = orjson.loads(record.value)
                found = Emitted(int(doc["revision"]), content_hash(doc))
            except (ValueError, KeyError, TypeError):
                continue
            key = record.key.decode()
            kept = emitted.get(key)
            if kept is None or kept[1].revision < found.revision:
                emitted[key] = (record.partition, found)
        self.restore_reads[ORDERS_ENRICHED] += len(emitted)
        return emitted

    async def checkpoint(self, consumed: dict[int, int], read_enriched: bool = False) -> None:
        """Wait until the enrichments sent so far are acknowledged (always: the caller commits the input next),
        then, at most every SAVE_EVERY_S, save the state with the checkpoint `consumed` (next `orders.ingested`
        offset per partition); the `orders.enriched` end is re-read every few seconds (and with `read_enriched`)."""
        for partition, offset in consumed.items():
            self._consumed[partition] = max(offset, self._consumed.get(partition, 0))
        now = time.monotonic()
        if not read_enriched and now - self._saved_at < SAVE_EVERY_S:
            # the store may lag the committed offsets: a restore reads the tails after its own checkpoint
            await self.flush()
            return
        self._saved_at = now
        async with self.lock:
            await self.flush()
            enriched: dict[int, int] = {}
            if read_enriched or time.monotonic() - self._enriched_read_at > ENRICHED_CHECKPOINT_EVERY_S:
                # under the lock: every record below these ends is one this instance sent and now knows
                with contextlib.suppress(KafkaError, TimeoutError):  # then the stored end stays where it was
                    async with asyncio.timeout(ENRICHED_READ_TIMEOUT_S):
                        ends = await offset_ranges(self.settings, (ORDERS_ENRICHED,), self.state.held)
                    enriched = {p: end for p, (_, end) in ends[ORDERS_ENRICHED].items()}
                self._enriched_read_at = time.monotonic()
            consumed, self._consumed = self._consumed, {}
            self.state.save(advance={p: Checkpoint(consumed.get(p, 0), enriched.get(p, 0))
                                     for p in consumed.keys() | enriched.keys() if p in self.state.held})


def _within(offset: int, bounds: tuple[int, int] | None) -> bool:
    """A checkpoint offset still on the topic: not before its log start (retention), not past its end (a new
    topic under the same name)."""
    return bounds is not None and bounds[0] <= offset <= bounds[1]


def _changed_mappings(seen: dict[str, int], table: dict[str, int]) -> set[str]:
    """Mapping keys whose last record differs from the one the stored enrichments reflect (a compacted-away
    tombstone counts: the key is gone from the table)."""
    return {k for k in seen.keys() | table.keys() if seen.get(k, -1) != table.get(k, -1)}


def _read_headers(headers: Headers | None) -> tuple[str | None, str | None, bool]:
    """(traceparent, replay id, forced replay) of an `orders.ingested` record, read as `header_map` would (last
    value wins, undecodable bytes replaced) without decoding the other headers."""
    traceparent = replay_id = force = None
    for name, value in headers or ():
        if name == "traceparent":
            traceparent = value
        elif name == REPLAY_ID:
            replay_id = value
        elif name == REPLAY_FORCE:
            force = value
    return (traceparent.decode("utf-8", "replace") if traceparent is not None else None,
            replay_id.decode("utf-8", "replace") if replay_id is not None else None, force == b"1")


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped: its base class is Any
    def __init__(self, service: MappingService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.service.restored.clear()
        async with self.service.lock:  # no emission can slip in between the flush and the drop
            self.service.generation += 1
            await self.service.flush()
            self.service.state.save()  # what the partitions' state learned stays in the store for a later restore
            self.service.state.drop_partitions({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.service.restored.clear()
        try:
            if assigned:
                await self.service.restore({tp.partition for tp in assigned})
        finally:  # a failed restore is logged by aiokafka; consuming on beats a consumer stuck for good
            self.service.restored.set()
        self.service.ready.set()  # joined the group and restored what it owns

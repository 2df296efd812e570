"""Replay: re-drive orders through enrichment with today's mappings, without stopping the services.

Replay selects orders, never versions. `--from/--to` pick the orders that changed in the window (any record of the
key written then); each selected order is re-driven from its *current* state: the newest record its key has on
`orders.ingested` (highest `order_version`, then offset), wherever that sits relative to the window. That record is
republished as it is (same value, partition and timestamp, its headers plus a `replay_id`), so the compacted table
keeps its value: a copy of the newest version cannot bring an older one back, before or after compaction.

`orders.enriched` is never written here. The mapping service, its one writer, re-enriches the copy from its own
per-partition state with today's mappings and revision last + 1. A second writer would take its revision from a
read the owner can overtake (a duplicate or backwards revision) that the owner's counter would then not know.

A copy races the ingest: a record it publishes between our read and our copy would be hidden by the copy (the newest
offset is what compaction keeps). After publishing, the log since the read is checked and any record a copy hides is
published again as it is (`restored`), until nothing is hidden.

What would change is computed first with the same pure `enrich`, so unchanged orders are not re-sent (unless
forced) and a dry run lists exactly the keys a real run publishes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord, RecordMetadata

from services.mapping.enrich import content_hash, enrich
from services.mapping.service import REPLAY_FORCE, REPLAY_ID
from shared.kafka import create_consumer, create_producer, partitions_of, read_to_end
from shared.mapping_table import MappingTable
from shared.mappings import Mapping as SkuMapping
from shared.orders import ACTIVE, IngestedOrder
from shared.settings import Settings
from shared.topics import ORDERS_ENRICHED, ORDERS_INGESTED, topic_name

Headers = tuple[tuple[str, bytes], ...]
MAX_RESTORE_ROUNDS = 5


@dataclass(frozen=True, slots=True)
class Selection:
    """Which orders to replay; `from_ms`/`to_ms` bound when an order changed ([from, to), record timestamps)."""

    shop_id: str | None = None
    from_ms: int | None = None
    to_ms: int | None = None
    order_ids: frozenset[str] | None = None
    only_incomplete: bool = False

    def in_window(self, timestamp_ms: int) -> bool:
        after_from = self.from_ms is None or timestamp_ms >= self.from_ms
        return after_from and (self.to_ms is None or timestamp_ms < self.to_ms)


@dataclass(slots=True)
class Summary:
    replay_id: str
    dry_run: bool
    read: int = 0
    selected: int = 0
    replayed: int = 0
    changed: int = 0
    unchanged: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    failures: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # the orders this run publishes (a dry run: would publish)
    restored: int = 0  # records a concurrent writer published during the replay, republished to stay the newest

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Stored:
    """One `orders.ingested` record as read: where and when it was written, and what it says."""

    partition: int
    offset: int
    timestamp_ms: int
    key: str
    value: bytes | None
    headers: Headers
    order: IngestedOrder | None  # None: a tombstone or an undecodable value

    @classmethod
    def from_record(cls, record: ConsumerRecord[bytes, bytes]) -> Stored | None:
        if record.key is None:
            return None
        order: IngestedOrder | None = None
        if record.value is not None:
            try:
                order = IngestedOrder.from_dict(orjson.loads(record.value))
            except (ValueError, KeyError, TypeError):
                order = None
        return cls(record.partition, record.offset, record.timestamp, record.key.decode(), record.value,
                   tuple(record.headers or ()), order)


@dataclass(slots=True)
class OrderHistory:
    """What `orders.ingested` holds for one order key."""

    current: Stored | None = None  # the newest decodable record: highest order_version, then offset
    last: Stored | None = None  # the last record by offset
    in_window: bool = False  # some record of the key was written in the selection's window

    def note(self, record: Stored, selection: Selection) -> None:
        """Fold in the key's next record (offset order); a tombstone forgets the order."""
        self.last = record
        if record.value is None:
            self.current, self.in_window = None, False
            return
        self.in_window = self.in_window or selection.in_window(record.timestamp_ms)
        if record.order is not None and (self.current is None or self.current.order is None
                                         or self.current.order.order_version <= record.order.order_version):
            self.current = record


@dataclass(slots=True)
class Snapshot:
    """`orders.ingested` read up to `ends` (partition → offset): one history per order key."""

    read: int
    orders: dict[str, OrderHistory]
    ends: dict[int, int]


@dataclass(slots=True)
class Plan:
    """What a replay publishes (`records`, sorted by key) and how it counted the selected orders."""

    records: list[Stored] = field(default_factory=list)
    selected: int = 0
    changed: int = 0
    unchanged: int = 0
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Sent:
    """A record this replay published, and where it landed."""

    record: Stored
    partition: int
    offset: int


# ---- the decisions -------------------------------------------------------------------------------------------
def plan_replay(orders: Mapping[str, OrderHistory], enriched: Mapping[str, Mapping[str, Any]],
                mappings: Mapping[str, SkuMapping], selection: Selection, force: bool) -> Plan:
    """The current records of the selected orders whose enrichment would change (all selected ones if `force`).

    Only orders that are active now are re-driven: a withdrawn order stays withdrawn, whatever it was in the window.
    """
    plan = Plan()
    for key, history in sorted(orders.items()):
        if not history.in_window or history.last is None:
            continue
        if history.last.order is None:
            plan.failures.append(f"{key}: undecodable orders.ingested record at offset {history.last.offset}")
            continue
        current = history.current
        order = current.order if current is not None else None
        if current is None or order is None or order.lifecycle != ACTIVE:
            continue
        if (selection.shop_id and order.shop_id != selection.shop_id) or (
                selection.order_ids is not None and order.order_id not in selection.order_ids):
            continue
        last = enriched.get(key)
        if selection.only_incomplete and (last is None or last.get("mapping_state") != "incomplete"):
            continue
        plan.selected += 1
        changes = last is None or content_hash(enrich(order, mappings)) != content_hash(last)
        plan.changed += changes
        plan.unchanged += not changes
        if changes or force:
            plan.records.append(current)
    return plan


def find_shadowed(sent: Mapping[str, Sent], tail: Iterable[Stored]) -> dict[str, Stored]:
    """Records the copies in `sent` now hide, per key: `tail` is the log since the replay's read, in offset order.

    A record of the key written by someone else before the copy is newer than what the replay read; unless a later
    record follows the copy, the copy became the key's newest offset over it. Ignored: the same value as the copy,
    and an older `order_version` (the copy is the newer state then).
    """
    ours = {(s.partition, s.offset) for s in sent.values()}
    hidden: dict[str, Stored] = {}
    followed: set[str] = set()
    for record in tail:
        copy = sent.get(record.key)
        if copy is None or record.partition != copy.partition or (record.partition, record.offset) in ours:
            continue
        if record.offset > copy.offset:
            followed.add(record.key)
        elif record.value != copy.record.value and not (
                record.order is not None and copy.record.order is not None
                and record.order.order_version < copy.record.order.order_version):
            hidden[record.key] = record
    return {key: record for key, record in hidden.items() if key not in followed}


def replay_headers(headers: Headers, extra: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """`headers` without any earlier replay's marks, plus `extra`."""
    return [(k, v) for k, v in headers if k not in (REPLAY_ID, REPLAY_FORCE)] + list(extra)


# ---- reading -------------------------------------------------------------------------------------------------
class IngestedReader:
    """Reads ranges of `orders.ingested` with one assigned (group-less) consumer."""

    def __init__(self, settings: Settings) -> None:
        self._name = topic_name(ORDERS_INGESTED, settings.shopsync_topic_prefix)
        self._consumer: AIOKafkaConsumer = create_consumer(settings, None)
        self._tps: list[TopicPartition] = []

    async def __aenter__(self) -> IngestedReader:
        await self._consumer.start()
        self._tps = [TopicPartition(self._name, p) for p in sorted(await partitions_of(self._consumer, self._name))]
        if self._tps:
            self._consumer.assign(self._tps)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def ends(self) -> dict[int, int]:
        return {tp.partition: o for tp, o in (await self._consumer.end_offsets(self._tps)).items()} if self._tps else {}

    async def records(self, since: Mapping[int, int] | None, until: Mapping[int, int]) -> AsyncIterator[Stored]:
        """Records from `since` (None: the beginning) up to `until`, in offset order per partition."""
        if not self._tps:
            return
        starts = {tp.partition: o for tp, o in (await self._consumer.beginning_offsets(self._tps)).items()}
        if since is not None:
            starts = {p: max(o, since.get(p, o)) for p, o in starts.items()}
        remaining = {tp for tp in self._tps if starts[tp.partition] < until.get(tp.partition, 0)}
        for tp in remaining:
            self._consumer.seek(tp, starts[tp.partition])
        while remaining:
            for tp, batch in (await self._consumer.getmany(*remaining, timeout_ms=500)).items():
                for r in batch:
                    if r.offset < until[tp.partition] and (stored := Stored.from_record(r)) is not None:
                        yield stored
            for tp in list(remaining):
                if await self._consumer.position(tp) >= until[tp.partition]:
                    remaining.discard(tp)


async def read_orders(settings: Settings, selection: Selection = Selection()) -> Snapshot:
    """Every order's history on `orders.ingested`, read from the beginning to its end now."""
    orders: dict[str, OrderHistory] = {}
    read = 0
    async with IngestedReader(settings) as reader:
        ends = await reader.ends()
        async for record in reader.records(None, ends):
            read += 1
            orders.setdefault(record.key, OrderHistory()).note(record, selection)
    return Snapshot(read, orders, ends)


async def read_enriched(settings: Settings) -> dict[str, dict[str, Any]]:
    """The newest `orders.enriched` value per key."""
    out: dict[str, dict[str, Any]] = {}
    async for r in read_to_end(settings, ORDERS_ENRICHED):
        if r.key is not None and r.value is not None:
            try:
                out[r.key.decode()] = orjson.loads(r.value)
            except orjson.JSONDecodeError:
                continue
    return out


# ---- the run -------------------------------------------------------------------------------------------------
async def replay(settings: Settings, selection: Selection, *, force: bool = False, dry_run: bool = False,
                 rate: float | None = None, on_progress: Callable[[Summary], None] | None = None) -> Summary:
    """Plan from the current state of every selected order, then (unless `dry_run`) publish the plan."""
    started = time.perf_counter()
    summary = Summary(replay_id=uuid.uuid4().hex, dry_run=dry_run)
    table = MappingTable()
    await table.load(settings)
    snapshot = await read_orders(settings, selection)
    plan = plan_replay(snapshot.orders, await read_enriched(settings), table.mappings, selection, force)
    summary.read, summary.selected, summary.changed, summary.unchanged = (
        snapshot.read, plan.selected, plan.changed, plan.unchanged)
    summary.failed, summary.failures = len(plan.failures), list(plan.failures)
    summary.keys = [r.key for r in plan.records]
    if dry_run:
        summary.replayed = len(plan.records)
    elif plan.records:
        await republish(settings, plan.records, snapshot.ends, summary, force=force, rate=rate,
                        on_progress=on_progress)
    summary.elapsed_s = round(time.perf_counter() - started, 3)
    return summary


async def republish(settings: Settings, records: Sequence[Stored], since: Mapping[int, int], summary: Summary, *,
                    force: bool = False, rate: float | None = None,
                    on_progress: Callable[[Summary], None] | None = None) -> None:
    """Publish copies of `records` (read up to `since`) marked with the replay id, then restore what they hide."""
    extra = [(REPLAY_ID, summary.replay_id.encode())] + ([(REPLAY_FORCE, b"1")] if force else [])

    def count_replayed(landed: int) -> None:
        summary.replayed += landed
        if on_progress is not None:
            on_progress(summary)

    producer = create_producer(settings)
    await producer.start()
    try:
        sent = await _send_copies(producer, settings, [(r, replay_headers(r.headers, extra)) for r in records],
                                  summary, rate, count_replayed)
        async with IngestedReader(settings) as reader:
            for attempt in range(MAX_RESTORE_ROUNDS + 1):
                until = await reader.ends()
                ours = {(s.partition, s.offset) for s in sent.values()}
                others = [r async for r in reader.records(since, until)
                          if r.key in sent and (r.partition, r.offset) not in ours]
                hidden = find_shadowed(sent, others)
                if not hidden or attempt == MAX_RESTORE_ROUNDS:
                    break
                since = until
                sent = await _send_copies(producer, settings, [(r, replay_headers(r.headers, ()))
                                                               for _, r in sorted(hidden.items())], summary)
                summary.restored += len(sent)
        summary.failed += len(hidden)
        summary.failures += [f"{key}: still hidden by a replayed copy after {MAX_RESTORE_ROUNDS} restores"
                             for key in sorted(hidden)]
    finally:
        await producer.stop()


async def _send_copies(producer: AIOKafkaProducer, settings: Settings,
                       copies: Sequence[tuple[Stored, list[tuple[str, bytes]]]], summary: Summary,
                       rate: float | None = None, on_batch: Callable[[int], None] | None = None) -> dict[str, Sent]:
    """Send each record again to its own partition with its own timestamp (so `--from/--to` still see when the
    order changed); what landed, by key. Failures are counted on `summary`; `on_batch(landed)` after each batch."""
    topic = topic_name(ORDERS_INGESTED, settings.shopsync_topic_prefix)
    landed: dict[str, Sent] = {}
    started = time.monotonic()
    pending: list[tuple[Stored, asyncio.Future[RecordMetadata]]] = []
    for n, (record, headers) in enumerate(copies, start=1):
        pending.append((record, await producer.send(topic, record.value, key=record.key.encode(),
                                                    partition=record.partition, timestamp_ms=record.timestamp_ms,
                                                    headers=headers)))
        if rate:
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        if len(pending) >= 500 or n == len(copies):
            results = await asyncio.gather(*(f for _, f in pending), return_exceptions=True)
            before = len(landed)
            for (copied, _), result in zip(pending, results, strict=True):
                if isinstance(result, BaseException):
                    summary.failed += 1
                    summary.failures.append(f"{copied.key}: not published: {result!r}")
                else:
                    landed[copied.key] = Sent(copied, result.partition, result.offset)
            pending = []
            if on_batch is not None:
                on_batch(len(landed) - before)
    return landed

"""Replay: re-drive orders through enrichment with today's mappings, without stopping the services.

The mapping service stays the single writer of `orders.enriched` (so revisions keep growing): replay republishes the
selected `orders.ingested` records with a `replay_id` header; the instance that owns each order's partition
re-enriches it with `cause: replay`. What would change is computed here first, with the same pure `enrich`, so
unchanged orders are not re-sent (unless forced) and a dry run counts exactly what a real run would do.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from aiokafka import TopicPartition

from services.mapping.enrich import content_hash, enrich
from services.mapping.service import REPLAY_FORCE, REPLAY_ID
from shared.mapping_table import MappingTable
from shared.kafka import create_consumer, create_producer, partitions_of, read_to_end
from shared.orders import ACTIVE, IngestedOrder
from shared.settings import Settings
from shared.topics import ORDERS_ENRICHED, ORDERS_INGESTED, topic_name


@dataclass(frozen=True, slots=True)
class Selection:
    shop_id: str | None = None
    from_ms: int | None = None
    to_ms: int | None = None
    order_ids: frozenset[str] | None = None
    only_incomplete: bool = False


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def read_ingested(settings: Settings, selection: Selection) -> tuple[int, dict[str, tuple[Any, IngestedOrder | None]]]:
    """(records read, latest record per key in the time range) — the range located with offsets_for_times."""
    name = topic_name(ORDERS_INGESTED, settings.shopsync_topic_prefix)
    consumer = create_consumer(settings, None)
    await consumer.start()
    latest: dict[str, tuple[Any, IngestedOrder | None]] = {}
    read = 0
    try:
        tps = [TopicPartition(name, p) for p in sorted(await partitions_of(consumer, name))]
        if not tps:
            return 0, {}
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        if selection.from_ms is not None:
            found = await consumer.offsets_for_times({tp: selection.from_ms for tp in tps})
            starts = {tp: found[tp].offset if found[tp] is not None else ends[tp] for tp in tps}
        if selection.to_ms is not None:
            found = await consumer.offsets_for_times({tp: selection.to_ms for tp in tps})
            ends = {tp: found[tp].offset if found[tp] is not None else ends[tp] for tp in tps}
        for tp in tps:
            consumer.seek(tp, starts[tp])
        remaining = {tp for tp in tps if starts[tp] < ends[tp]}
        while remaining:
            for tp, records in (await consumer.getmany(*remaining, timeout_ms=500)).items():
                for r in records:
                    if r.offset >= ends[tp] or r.key is None or r.value is None:
                        continue
                    read += 1
                    try:
                        order: IngestedOrder | None = IngestedOrder.from_dict(orjson.loads(r.value))
                    except (ValueError, KeyError, TypeError):
                        order = None
                    latest[r.key.decode()] = (r, order)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return read, latest


async def last_enriched(settings: Settings) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    async for r in read_to_end(settings, ORDERS_ENRICHED):
        if r.key is not None and r.value is not None:
            try:
                out[r.key.decode()] = orjson.loads(r.value)
            except orjson.JSONDecodeError:
                continue
    return out


async def replay(settings: Settings, selection: Selection, *, force: bool = False, dry_run: bool = False,
                 rate: float | None = None, on_progress: Callable[[Summary], None] | None = None) -> Summary:
    started = time.perf_counter()
    summary = Summary(replay_id=uuid.uuid4().hex, dry_run=dry_run)
    table = MappingTable()
    await table.load(settings)
    summary.read, candidates = await read_ingested(settings, selection)
    enriched = await last_enriched(settings)
    plan: list[Any] = []
    for key, (record, order) in sorted(candidates.items()):
        if order is None:
            summary.failed += 1
            summary.failures.append(f"{key}: undecodable orders.ingested record")
            continue
        if order.lifecycle != ACTIVE or (selection.shop_id and order.shop_id != selection.shop_id):
            continue
        if selection.order_ids is not None and order.order_id not in selection.order_ids:
            continue
        last = enriched.get(key)
        if selection.only_incomplete and (last is None or last.get("mapping_state") != "incomplete"):
            continue
        summary.selected += 1
        changes = last is None or content_hash(enrich(order, table.mappings)) != content_hash(last)
        if changes:
            summary.changed += 1
        else:
            summary.unchanged += 1
        if changes or force:
            plan.append(record)
    if not dry_run and plan:
        await _republish(settings, plan, summary, force, rate, on_progress)
    elif dry_run:
        summary.replayed = len(plan)
    summary.elapsed_s = round(time.perf_counter() - started, 3)
    return summary


async def _republish(settings: Settings, records: list[Any], summary: Summary, force: bool, rate: float | None,
                     on_progress: Callable[[Summary], None] | None) -> None:
    producer = create_producer(settings)
    await producer.start()
    topic = topic_name(ORDERS_INGESTED, settings.shopsync_topic_prefix)
    extra = [(REPLAY_ID, summary.replay_id.encode())] + ([(REPLAY_FORCE, b"1")] if force else [])
    started = time.monotonic()
    try:
        pending = []
        for n, r in enumerate(records, start=1):
            headers = [(k, v) for k, v in (r.headers or ()) if k not in (REPLAY_ID, REPLAY_FORCE)] + extra
            pending.append(await producer.send(topic, r.value, key=r.key, headers=headers))
            if rate:
                delay = started + n / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            if len(pending) >= 500 or n == len(records):
                for result in await asyncio.gather(*pending, return_exceptions=True):
                    if isinstance(result, Exception):
                        summary.failed += 1
                    else:
                        summary.replayed += 1
                pending = []
                if on_progress is not None:
                    on_progress(summary)
    finally:
        await producer.stop()

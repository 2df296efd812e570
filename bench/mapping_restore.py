"""Mapping service: time to ready after a restart with 100,000 and 1,000,000 open orders, cold (no local store:
the full restore from the topics, which also writes the store) and warm (the store present, a few hundred changes
made while the service was down: new order versions, and a mapping change affecting 100 orders).

Real local broker, a unique topic prefix per size, the service in-process. `orders.enriched` is pre-filled with
each order's revision 1 (what the service would have emitted), so a restore has both topics to read and nothing
to re-emit but the changes. Runs cold, warm, cold, warm (side by side). Run: `python -m bench mapping_restore`
(`BENCH_ORDERS=20000` for one quicker size).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from aiokafka import TopicPartition

from bench.common import write_result
from services.mapping.enrich import enrich
from services.mapping.service import GROUP, MappingService
from services.mapping.wiring import build_service
from shared.admin import serve
from shared.kafka import create_consumer, create_producer
from shared.mappings import Mapping, mapping_key
from shared.orders import ACTIVE, IngestedOrder, OrderLine, sku_quantities
from shared.settings import Settings, load_settings
from shared.topics import MAPPINGS, ORDERS_ENRICHED, ORDERS_INGESTED, topic_name
from shopsync.topic_admin import delete_prefixed_topics, ensure_topics

SHOP = "7494049642642441621"
RARE_ORDERS = 100  # orders carrying the SKU whose mapping changes while the service is down
NEW_VERSIONS = 200  # orders that get a new version while the service is down
CHUNK = 20_000


def order(i: int, n: int, version: int = 1) -> IngestedOrder:
    skus = [f"SKU-{i % 500}"]
    if i % (n // RARE_ORDERS) == 0:
        skus.append("RARE")
    lines = [OrderLine(f"{i}-{j}", f"k-{s}", s, f"p-{s}", f"Product {s}", "M", "9.99", "9.99")
             for j, s in enumerate(skus)]
    return IngestedOrder(SHOP, str(10**17 + i), version, ACTIVE, "AWAITING_SHIPMENT", "Main store", "w1", "SELLER",
                         "FULFILLMENT_BY_SELLER", lines, sku_quantities(lines))


def ingested_chunks(n: int) -> Iterator[list[tuple[bytes, bytes]]]:
    for start in range(0, n, CHUNK):
        yield [((o := order(i, n)).key.encode(), orjson.dumps(o.to_dict()))
               for i in range(start, min(n, start + CHUNK))]


def enriched_chunks(n: int) -> Iterator[list[tuple[bytes, bytes]]]:
    """Revision 1 of every order as the service emits it (content hashes match: nothing to re-emit)."""
    for start in range(0, n, CHUNK):
        yield [((o := order(i, n)).key.encode(),
                orjson.dumps({**enrich(o, {}), "revision": 1, "cause": "order_update", "enriched_at": "x"}))
               for i in range(start, min(n, start + CHUNK))]


async def produce(settings: Settings, topic: str, chunks: Iterator[list[tuple[bytes, bytes]]]) -> None:
    """A plain producer with big lz4 batches; one wait per chunk."""
    producer = create_producer(settings, linger_ms=50, max_batch_size=1024 * 1024, enable_idempotence=False,
                               acks=1)
    await producer.start()
    try:
        for chunk in chunks:
            futures = [await producer.send(topic, value, key=key) for key, value in chunk]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def commit_to_end(settings: Settings, group: str) -> None:
    """The service's group has consumed everything so far (it ran before): a restart only restores."""
    name = topic_name(ORDERS_INGESTED, settings.shopsync_topic_prefix)
    consumer = create_consumer(settings, group)
    await consumer.start()
    try:
        tps = [TopicPartition(name, p) for p in range(settings.shopsync_topic_partitions)]
        consumer.assign(tps)
        await consumer.commit({tp: end for tp, end in (await consumer.end_offsets(tps)).items()})
    finally:
        await consumer.stop()


async def change_while_down(settings: Settings, n: int, round_: int) -> None:
    """NEW_VERSIONS new order versions and one mapping change affecting RARE_ORDERS orders."""
    step = n // NEW_VERSIONS
    await produce(settings, topic_name(ORDERS_INGESTED, settings.shopsync_topic_prefix),
                  iter([[((o := order(i * step + round_, n, version=1 + round_)).key.encode(),
                          orjson.dumps(o.to_dict())) for i in range(NEW_VERSIONS)]]))
    await produce(settings, topic_name(MAPPINGS, settings.shopsync_topic_prefix),
                  iter([[(mapping_key(SHOP, "RARE").encode(),
                          orjson.dumps(Mapping(f"P-RARE-{round_}", "", "bench", round_).to_dict()))]]))


async def time_to_ready(settings: Settings) -> tuple[float, float, MappingService]:
    """(seconds from start to ready, seconds spent in `restore`, the service), the service stopped again."""
    service = build_service(settings)
    restore = service.restore
    spent = 0.0

    async def timed_restore(partitions: set[int]) -> None:
        nonlocal spent
        began = time.perf_counter()
        await restore(partitions)
        spent += time.perf_counter() - began

    service.restore = timed_restore  # type: ignore[method-assign]  # the benchmark times the real restore
    started = time.perf_counter()
    task = asyncio.create_task(serve(service))
    await service.ready.wait()
    ready = time.perf_counter() - started
    service.stop()
    await task
    return ready, spent, service


def size_mb(directory: Path) -> float:
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file()) / 1e6


def reemitted(service: MappingService) -> int:
    return int(service.metrics.registry.get_sample_value("mapping_enriched_emitted_total",
                                                         {"cause": "mapping_change"}) or 0)


async def run_size(n: int) -> dict[str, Any]:
    prefix = f"benchrst{uuid.uuid4().hex[:6]}."
    state_dir = Path(tempfile.mkdtemp(prefix="shopsync-bench-state-"))
    settings = load_settings(shopsync_topic_prefix=prefix, shopsync_state_dir=state_dir)
    await ensure_topics(settings)
    try:
        began = time.perf_counter()
        await produce(settings, topic_name(ORDERS_INGESTED, prefix), ingested_chunks(n))
        await produce(settings, topic_name(ORDERS_ENRICHED, prefix), enriched_chunks(n))
        await commit_to_end(settings, topic_name(GROUP, prefix))
        print(f"{n}: produced {n} orders and {n} enrichments in {time.perf_counter() - began:.0f} s", flush=True)
        runs: list[dict[str, Any]] = []
        for round_ in (1, 2):
            shutil.rmtree(state_dir, ignore_errors=True)  # cold: no local store
            ready, spent, service = await time_to_ready(settings)
            runs.append({"kind": "cold", "ready_s": round(ready, 2), "restore_s": round(spent, 2),
                         "read": dict(service.restore_reads), "reemitted": reemitted(service)})
            print(f"{n}: {runs[-1]}", flush=True)
            await change_while_down(settings, n, round_)
            ready, spent, service = await time_to_ready(settings)
            runs.append({"kind": "warm", "ready_s": round(ready, 2), "restore_s": round(spent, 2),
                         "read": dict(service.restore_reads), "reemitted": reemitted(service)})
            print(f"{n}: {runs[-1]}", flush=True)
            await commit_to_end(settings, topic_name(GROUP, prefix))
        cold = sorted(r["ready_s"] for r in runs if r["kind"] == "cold")
        warm = sorted(r["ready_s"] for r in runs if r["kind"] == "warm")
        store_mb = size_mb(state_dir)
        return {"open_orders": n, "changes_while_down": {"new_versions": NEW_VERSIONS,
                                                         "orders_affected_by_mapping": RARE_ORDERS},
                "runs": runs, "cold_ready_s": cold, "warm_ready_s": warm,
                "ratio_warm_over_cold": round(sum(warm) / sum(cold), 3), "store_mb": round(store_mb)}
    finally:
        await delete_prefixed_topics(settings)
        shutil.rmtree(state_dir, ignore_errors=True)


async def run(sizes: list[int]) -> dict[str, object]:
    results = [await run_size(n) for n in sizes]
    return {"sizes": results, "aims": {"warm_ready_s_at_1m": "< 10"},
            "note": "ready = start to joined + restored (includes the group join); restore_s = time in restore"}


def main() -> None:
    sizes = [int(os.environ["BENCH_ORDERS"])] if "BENCH_ORDERS" in os.environ else [100_000, 1_000_000]
    write_result("mapping_restore", asyncio.run(run(sizes)))


if __name__ == "__main__":
    main()

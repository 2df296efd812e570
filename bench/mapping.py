"""Mapping service: re-emission latency for a change affecting 10,000 of 100,000 open orders, and enrichment
throughput against a plain aiokafka consume→produce passthrough of the same records (the ceiling).

Real local broker, a unique topic prefix, the service in-process. Run: `python -m bench mapping`
(`BENCH_ORDERS=20000` for a quicker run).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import orjson

from bench.common import write_result
from services.mapping.service import MappingService
from services.mapping.wiring import build_service
from shared.admin import serve
from shared.kafka import create_consumer, create_producer
from shared.mappings import Mapping, mapping_key
from shared.orders import ACTIVE, IngestedOrder, OrderLine, sku_quantities
from shared.settings import Settings, load_settings
from shared.topics import ORDERS_ENRICHED, ORDERS_INGESTED, topic_name
from shopsync.topic_admin import delete_prefixed_topics, ensure_topics

SHOP = "7494049642642441621"
HOT_SKUS = 10


def orders(n: int) -> list[IngestedOrder]:
    """n orders; the first n/10 carry one of 10 'hot' SKUs (n/100 orders each), every order a common SKU."""
    out = []
    for i in range(n):
        skus = [f"SKU-{i % 500}"]
        if i < n // 10:
            skus.append(f"HOT-{i % HOT_SKUS}")
        lines = [OrderLine(f"{i}-{j}", f"k-{s}", s, f"p-{s}", f"Product {s}", "M", "9.99", "9.99")
                 for j, s in enumerate(skus)]
        out.append(IngestedOrder(SHOP, str(10**17 + i), 1, ACTIVE, "AWAITING_SHIPMENT", "Main store", "w1", "SELLER",
                                 "FULFILLMENT_BY_SELLER", lines, sku_quantities(lines)))
    return out


async def produce(settings: Settings, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = create_producer(settings, linger_ms=20)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def count_until(settings: Settings, topic: str, target: int, predicate=None) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(perf_counter when the first, and when the `target`-th matching record was read from `topic`)."""
    consumer = create_consumer(settings, None, topic, fetch_max_bytes=50 * 1024 * 1024,
                               max_partition_fetch_bytes=10 * 1024 * 1024)
    await consumer.start()
    seen = 0
    first = 0.0
    try:
        while seen < target:
            for batch in (await consumer.getmany(timeout_ms=100, max_records=5000)).values():
                seen += sum(1 for r in batch if predicate is None or predicate(r))
                first = first or (time.perf_counter() if seen else 0.0)
        return first, time.perf_counter()
    finally:
        await consumer.stop()


async def emitted_progress(service: MappingService, n: int) -> tuple[float, float]:
    """(first, last) time the service's own counter of published enrichments moved, up to n (no reader in the loop,
    like the passthrough)."""
    first = 0.0
    while True:
        emitted = service.metrics.registry.get_sample_value("mapping_enriched_emitted_total",
                                                            {"cause": "order_update"}) or 0
        if emitted and not first:
            first = time.perf_counter()
        if emitted >= n:
            await service.flush()
            return first, time.perf_counter()
        await asyncio.sleep(0.02)


async def passthrough(settings: Settings, n: int) -> float:
    """A plain consumer group copying orders.ingested to a scratch topic: records/s."""
    source = topic_name(ORDERS_INGESTED, settings.shopsync_topic_prefix)
    sink = topic_name(ORDERS_ENRICHED, "pass." + settings.shopsync_topic_prefix)
    consumer = create_consumer(settings, f"pass-{uuid.uuid4().hex[:6]}", ORDERS_INGESTED)
    producer = create_producer(settings)
    await consumer.start()
    await producer.start()
    started = None
    copied = 0
    try:
        while copied < n:
            batches = await consumer.getmany(timeout_ms=100, max_records=1000)
            started = started or time.perf_counter()
            futures = [await producer.send(sink, r.value, key=r.key, headers=r.headers)
                       for records in batches.values() for r in records]
            await asyncio.gather(*futures)
            copied += len(futures)
            await consumer.commit()
        return n / (time.perf_counter() - (started or time.perf_counter()))
    finally:
        await producer.stop()
        await consumer.stop()
    del source


async def run(n: int) -> dict[str, object]:
    prefix = f"benchmap{uuid.uuid4().hex[:6]}."
    settings = load_settings(shopsync_topic_prefix=prefix)
    await ensure_topics(settings)
    pass_settings = load_settings(shopsync_topic_prefix="pass." + prefix)
    await ensure_topics(pass_settings)
    data = [(o.key.encode(), orjson.dumps(o.to_dict())) for o in orders(n)]
    await produce(settings, topic_name(ORDERS_INGESTED, prefix), data)
    print(f"loaded {n} open orders", flush=True)

    ceiling = await passthrough(settings, n)
    print(f"passthrough: {ceiling:.0f} records/s", flush=True)

    service = build_service(settings)
    task = asyncio.create_task(serve(service))
    first, last = await emitted_progress(service, n)
    enrich_rate = n / (last - first)  # steady state: start-up and partition restore are not enrichment
    print(f"enrichment: {enrich_rate:.0f} orders/s", flush=True)

    affected = n // 10
    waiter = asyncio.create_task(count_until(
        settings, ORDERS_ENRICHED, affected, lambda r: dict(r.headers).get("shopsync_cause") == b"mapping_change"))
    await asyncio.sleep(1.0)  # the counting consumer is positioned
    changed_at = time.perf_counter()
    mapping_topic = topic_name("shopsync.mappings", prefix)
    await produce(settings, mapping_topic, [(mapping_key(SHOP, f"HOT-{i}").encode(),
                                             orjson.dumps(Mapping(f"P-{i}", "", "bench", 1).to_dict()))
                                            for i in range(HOT_SKUS)])
    reemit_s = (await waiter)[1] - changed_at
    print(f"re-emission of {affected} orders: {reemit_s:.2f} s", flush=True)
    service.stop()
    await task
    restarted = build_service(settings)  # same group: a restart restores the 100,000 open orders
    started = time.perf_counter()
    task2 = asyncio.create_task(serve(restarted))
    await restarted.ready.wait()
    restore_s = time.perf_counter() - started
    print(f"restart restored {len(restarted.state.orders)} open orders in {restore_s:.2f} s", flush=True)
    restarted.stop()
    await task2
    await delete_prefixed_topics(settings)
    await delete_prefixed_topics(pass_settings)
    return {"open_orders": n, "affected_orders": affected, "mapping_changes": HOT_SKUS,
            "reemit_seconds": round(reemit_s, 3), "restart_restore_seconds": round(restore_s, 2),
            "enrichment_orders_per_s": round(enrich_rate), "passthrough_records_per_s": round(ceiling),
            "ratio_enrichment_over_passthrough": round(enrich_rate / ceiling, 3),
            "aims": {"reemit_seconds": "< 2", "ratio": ">= 0.5"}}


def main() -> None:
    write_result("mapping", asyncio.run(run(int(os.environ.get("BENCH_ORDERS", "100000")))))


if __name__ == "__main__":
    main()

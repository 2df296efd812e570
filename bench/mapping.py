"""Mapping service: re-emission latency for a change affecting 10,000 of 100,000 open orders, and enrichment
throughput against a plain aiokafka consume→produce passthrough of the same records (the ceiling).

Real local broker, a unique topic prefix, the service in-process. Throughput is measured interleaved, passthrough
then enrichment, `BENCH_ROUNDS` times (default 2: A B A B), each enrichment round with a fresh service on its own
copy of the same records (a fresh prefix: nothing emitted before), each passthrough in a fresh group over the same
records with the same consumer and producer settings (`create_consumer`/`create_producer` defaults). The ratio is
of the medians. Run: `python -m bench mapping` (`BENCH_ORDERS=20000` for a quicker run).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid

import orjson

from bench.common import write_result
from services.mapping.service import MappingService
from services.mapping.wiring import GC_YOUNG_THRESHOLD, build_service
from shared.admin import serve
from shared.envelope import CloudEvent, rfc3339, to_headers
from shared.kafka import create_consumer, create_producer
from shared.mappings import Mapping, mapping_key
from shared.orders import ACTIVE, CE_SOURCE_INGEST, CE_TYPE_INGESTED, IngestedOrder, OrderLine, sku_quantities
from shared.process import tune_gc
from shared.settings import Settings, load_settings
from shared.topics import ORDERS_ENRICHED, ORDERS_INGESTED, topic_name
from shared.tracing import new_traceparent
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


def ingested_records(n: int) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """(key, value, headers) of n orders as the ingest publishes them: CloudEvents headers and a traceparent."""
    out = []
    for order in orders(n):
        value = orjson.dumps(order.to_dict())
        event = CloudEvent(id=f"{order.key}:{order.order_version}:{order.lifecycle}", source=CE_SOURCE_INGEST,
                           type=CE_TYPE_INGESTED, data=value, time=rfc3339(time.time()), subject=order.key)
        out.append((order.key.encode(), value, to_headers(event, [("traceparent", new_traceparent())])))
    return out


async def produce(settings: Settings, topic: str,
                  records: list[tuple[bytes, bytes]] | list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> None:
    producer = create_producer(settings, linger_ms=20)
    await producer.start()
    try:
        futures = [await producer.send(topic, record[1], key=record[0], headers=record[2] if len(record) > 2 else None)
                   for record in records]
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


async def emitted_progress(service: MappingService, n: int) -> tuple[float, float, float]:
    """(first, last) time the service's own counter of published enrichments moved, up to n (no reader in the loop,
    like the passthrough), and the process's CPU seconds in between."""
    first = cpu = 0.0
    while True:
        emitted = service.metrics.registry.get_sample_value("mapping_enriched_emitted_total",
                                                            {"cause": "order_update"}) or 0
        if emitted and not first:
            first, cpu = time.perf_counter(), time.process_time()
        if emitted >= n:
            await service.flush()
            return first, time.perf_counter(), time.process_time() - cpu
        await asyncio.sleep(0.02)


async def passthrough(settings: Settings, n: int, sink_prefix: str) -> tuple[float, float]:
    """A plain consumer group copying orders.ingested to a scratch topic: (records/s, CPU µs per record)."""
    sink = topic_name(ORDERS_ENRICHED, sink_prefix)
    consumer = create_consumer(settings, f"pass-{uuid.uuid4().hex[:6]}", ORDERS_INGESTED)
    producer = create_producer(settings)
    await consumer.start()
    await producer.start()
    started: float | None = None
    cpu = 0.0
    copied = 0
    try:
        while copied < n:
            batches = await consumer.getmany(timeout_ms=100, max_records=1000)
            if started is None:
                started, cpu = time.perf_counter(), time.process_time()
            futures = [await producer.send(sink, r.value, key=r.key, headers=list(r.headers))
                       for records in batches.values() for r in records]
            await asyncio.gather(*futures)
            copied += len(futures)
            await consumer.commit()
        return n / (time.perf_counter() - (started or time.perf_counter())), (time.process_time() - cpu) / n * 1e6
    finally:
        await producer.stop()
        await consumer.stop()


async def enrichment(settings: Settings, n: int) -> tuple[float, float, MappingService, asyncio.Task[None]]:
    """A fresh service enriching the n orders of `settings`' prefix: (orders/s in steady state, CPU µs per order,
    service, its task)."""
    service = build_service(settings)
    task = asyncio.create_task(serve(service))
    first, last, cpu = await emitted_progress(service, n)
    return n / (last - first), cpu / n * 1e6, service, task  # steady state: start-up and restore are not enrichment


async def run(n: int, rounds: int) -> dict[str, object]:
    base = f"benchmap{uuid.uuid4().hex[:6]}"
    all_settings = [load_settings(shopsync_topic_prefix=f"{base}r{r}.") for r in range(rounds)]
    pass_settings = load_settings(shopsync_topic_prefix=f"pass.{base}.")
    await ensure_topics(pass_settings)
    data = ingested_records(n)
    for settings in all_settings:
        await ensure_topics(settings)
        await produce(settings, topic_name(ORDERS_INGESTED, settings.shopsync_topic_prefix), data)
    print(f"loaded {n} open orders ({rounds} copies)", flush=True)

    ceilings: list[float] = []
    rates: list[float] = []
    cpus: list[tuple[float, float]] = []  # (passthrough, enrichment) CPU µs per record
    for r, settings in enumerate(all_settings):  # A B A B: the machine's drift hits both alike
        ceiling, pass_cpu = await passthrough(settings, n, pass_settings.shopsync_topic_prefix)
        rate, enrich_cpu, service, task = await enrichment(settings, n)
        ceilings.append(ceiling)
        rates.append(rate)
        cpus.append((pass_cpu, enrich_cpu))
        print(f"round {r + 1}: passthrough {ceiling:.0f} records/s ({pass_cpu:.1f} us CPU each), enrichment "
              f"{rate:.0f} orders/s ({enrich_cpu:.1f} us CPU each), ratio {rate / ceiling:.3f}", flush=True)
        if r < rounds - 1:
            service.stop()
            await task
    ceiling, enrich_rate = statistics.median(ceilings), statistics.median(rates)
    print(f"medians: passthrough {ceiling:.0f}, enrichment {enrich_rate:.0f}, ratio {enrich_rate / ceiling:.3f}",
          flush=True)

    prefix = settings.shopsync_topic_prefix  # the last round's service stays up for the re-emission

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
    for each in [*all_settings, pass_settings]:
        await delete_prefixed_topics(each)
    return {"open_orders": n, "affected_orders": affected, "mapping_changes": HOT_SKUS,
            "reemit_seconds": round(reemit_s, 3), "restart_restore_seconds": round(restore_s, 2),
            "enrichment_orders_per_s": round(enrich_rate), "passthrough_records_per_s": round(ceiling),
            "ratio_enrichment_over_passthrough": round(enrich_rate / ceiling, 3),
            "rounds": [{"passthrough_records_per_s": round(c), "enrichment_orders_per_s": round(e),
                        "ratio": round(e / c, 3), "passthrough_cpu_us_per_record": round(pc, 1),
                        "enrichment_cpu_us_per_order": round(ec, 1)}
                       for c, e, (pc, ec) in zip(ceilings, rates, cpus, strict=True)],
            "aims": {"reemit_seconds": "< 2", "ratio": ">= 0.5"}}


def main() -> None:
    tune_gc(GC_YOUNG_THRESHOLD)  # as the mapping process does (`app_factory`); the passthrough shares the process
    write_result("mapping", asyncio.run(run(int(os.environ.get("BENCH_ORDERS", "100000")),
                                            int(os.environ.get("BENCH_ROUNDS", "2")))))


if __name__ == "__main__":
    main()

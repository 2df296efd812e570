"""End to end: pre-signed webhooks pushed at fixed rates → gateway → ingest → mapping → orders.enriched.

Every service runs as a real process, started the way `shopsync run --demo` starts it (the sandbox answers Get
Order Detail as TikTok); the broker is the shared one at KAFKA_BOOTSTRAP_SERVERS, under a fresh topic prefix.
Before each rate the orders are created in the sandbox in bulk (no webhooks from it) and their ORDER_STATUS_CHANGE
webhooks built and signed; the driver (`bench/_e2e_driver.py`, in this process) then pushes them at the offered
rate over keep-alive connections. Latency = the moment this process reads the order's enriched record from
`orders.enriched` minus the moment its webhook was written to the socket. CPU per process is sampled from
/proc/<pid>/stat over the push window. Layouts: one process per service, then two ingest instances.

Run: `python -m bench e2e` (BENCH_E2E_SECONDS per rate, default 15; BENCH_E2E_RATES, default 200,500,700;
BENCH_E2E_LAYOUTS, default 1,2,1,2: one then two ingest processes, twice, interleaved; `NxM` runs N ingest and
M mapping processes, `N@/path` the services of another checkout (run the bench from outside this checkout, with
PYTHONPATH=<this checkout>, so the children's working directory does not shadow it);
BENCH_E2E_MIX=1 pushes the sandbox's traffic mix instead of
orders that all qualify).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench._e2e_driver import Push, order_status_pushes, push_at_rate
from bench._proc_cpu import CpuSampler, find_pid
from bench.common import free_port, percentile, write_result
from shared.kafka import create_consumer
from shared.settings import Settings, load_settings
from shared.topics import ORDERS_ENRICHED, ORDERS_INGESTED, TIKTOK_WEBHOOKS, topic_name
from shopsync.demo import DEMO_SHOP, DEMO_WAREHOUSE_ID, demo_environment, link_demo_store, wait_healthy
from shopsync.supervisor import Child, Supervisor
from shopsync.topic_admin import delete_prefixed_topics, ensure_topics

DRAIN_S = 5.0  # after the last push, how long the pipeline may take to enrich the rest
BULK_CHUNK = 5000
WARM_UP = (100, 3.0)  # orders/s, seconds: connections, consumer groups and code paths warm before measuring
GOAL_P99_MS = 250.0
KEPT_UP_P99_MS = 1000.0  # above it a queue is growing: latency then rises through the window, not jitter
BENCH = "bench (driver + reader)"


@dataclass(slots=True)
class Seen:
    """First sighting of each order on the ingest's and the mapping's output topics (wall-clock seconds)."""

    webhook_read: dict[str, float] = field(default_factory=dict)  # the gateway's record, read by this process
    ingested_ts: dict[str, float] = field(default_factory=dict)  # record timestamp: the ingest's publish
    enriched_ts: dict[str, float] = field(default_factory=dict)  # record timestamp: the mapping's publish
    enriched_read: dict[str, float] = field(default_factory=dict)  # when this process read it
    expected: set[str] = field(default_factory=set)
    complete: asyncio.Event = field(default_factory=asyncio.Event)  # every expected order was read enriched


async def follow_outputs(settings: Settings, seen: Seen, ready: asyncio.Event, stop: asyncio.Event) -> None:
    """Read tiktok.webhooks, orders.ingested and orders.enriched from their current ends until `stop`."""
    consumer = create_consumer(settings, None, fetch_max_wait_ms=20)
    await consumer.start()
    try:
        from aiokafka.structs import TopicPartition

        names = {topic_name(t, settings.shopsync_topic_prefix): t
                 for t in (TIKTOK_WEBHOOKS, ORDERS_INGESTED, ORDERS_ENRICHED)}
        parts = [TopicPartition(n, p) for n in names for p in range(settings.shopsync_topic_partitions)]  # created
        # by this run
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for tp in parts:
            await consumer.position(tp)
        ready.set()
        while not stop.is_set():
            for tp, records in (await consumer.getmany(timeout_ms=50)).items():
                now = time.time()
                topic = names[tp.topic]
                enriched = topic == ORDERS_ENRICHED
                for record in records:
                    if record.key is None or record.value is None:
                        continue
                    order_id = record.key.decode().rpartition(":")[2]
                    if enriched and order_id not in seen.enriched_read:
                        seen.enriched_ts[order_id] = record.timestamp / 1000
                        seen.enriched_read[order_id] = now
                        if order_id in seen.expected and len(seen.enriched_read) >= len(seen.expected) and \
                                seen.expected <= seen.enriched_read.keys():
                            seen.complete.set()
                    elif topic == TIKTOK_WEBHOOKS:
                        seen.webhook_read.setdefault(order_id, now)
                    elif not enriched:
                        seen.ingested_ts.setdefault(order_id, record.timestamp / 1000)
    finally:
        await consumer.stop()


async def create_orders(sandbox: str, count: int, mix: bool) -> list[dict[str, Any]]:
    """`count` orders of the demo shop, created in the sandbox without webhooks."""
    orders: list[dict[str, Any]] = []
    async with httpx.AsyncClient(timeout=120) as http:
        while len(orders) < count:
            answer = await http.post(f"{sandbox}/sandbox/orders/bulk", json={
                "shop_id": DEMO_SHOP, "count": min(BULK_CHUNK, count - len(orders)), "mix": mix})
            answer.raise_for_status()
            orders += answer.json()["orders"]
    return orders


def qualifies(order: dict[str, Any]) -> bool:
    """What the ingest accepts for the demo store (linked to the LA warehouse): the rest is rightly skipped."""
    return (order["order_status"] == "AWAITING_SHIPMENT" and order["shipping_type"] == "SELLER"
            and order["fulfillment_type"] == "FULFILLMENT_BY_SELLER" and order["warehouse_id"] == DEMO_WAREHOUSE_ID)


async def map_every_sku(settings: Settings, sandbox: str) -> int:
    """Map every seller SKU of the demo shop, so every qualifying order is enriched."""
    async with httpx.AsyncClient(timeout=30) as http:
        state = (await http.get(f"{sandbox}/sandbox/state")).json()
        skus = sorted({k["seller_sku"] for p in state["products"][DEMO_SHOP] for k in p["skus"] if k["seller_sku"]})
        rows = ["shop_id,seller_sku,product_code", *(f"{DEMO_SHOP},{s},OMS-{s}" for s in skus)]
        token = settings.shopsync_admin_token.get_secret_value()
        answer = await http.post(f"{settings.shopsync_mapping_url}/mappings/import", content="\n".join(rows) + "\n",
                                 headers={"Authorization": f"Bearer {token}"})
        answer.raise_for_status()
    return int(answer.json()["imported"])


async def measure(settings: Settings, sandbox: str, gateway_port: int, rate: int, seconds: float, mix: bool,
                  sampler: CpuSampler | None) -> dict[str, Any]:
    orders = await create_orders(sandbox, int(rate * seconds), mix)
    pushes = order_status_pushes(orders, f"127.0.0.1:{gateway_port}", settings.tiktok_app_key,
                                 settings.tiktok_app_secret.get_secret_value())
    expected = {str(o["order_id"]) for o in orders if qualifies(o)}
    seen, ready, stop = Seen(expected=expected), asyncio.Event(), asyncio.Event()
    follower = asyncio.create_task(follow_outputs(settings, seen, ready, stop))
    await asyncio.wait([follower, asyncio.create_task(ready.wait())], return_when=asyncio.FIRST_COMPLETED)
    if follower.done():
        follower.result()  # it failed before it was ready: raise its error
    if sampler:
        sampler.start()
    started = time.time()
    await push_at_rate("127.0.0.1", gateway_port, pushes, rate)
    pushed_in = time.time() - started
    cpu = sampler.stop() if sampler else {}
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_S):
            await seen.complete.wait()
    stop.set()
    await follower
    return summarize(rate, pushes, expected, seen, pushed_in, cpu)


def summarize(rate: int, pushes: list[Push], expected: set[str], seen: Seen, pushed_in: float,
              cpu: dict[str, float]) -> dict[str, Any]:
    by_id = {p.order_id: p for p in pushes}
    done = [by_id[o] for o in expected if o in seen.enriched_read]
    latency = sorted(seen.enriched_read[p.order_id] - p.sent_at for p in done)
    from_due = sorted(seen.enriched_read[p.order_id] - p.due_at for p in done)

    def ms(values: list[float], q: float) -> float:
        return round(percentile(values, q) * 1000, 1)

    stages = {"gateway_acked": sorted(p.acked_at - p.sent_at for p in pushes if p.acked_at),
              "webhook_read_by_bench": sorted(seen.webhook_read[p.order_id] - p.sent_at for p in done
                                              if p.order_id in seen.webhook_read),
              "ingest_published": sorted(seen.ingested_ts[p.order_id] - p.sent_at for p in done
                                         if p.order_id in seen.ingested_ts),
              "mapping_published": sorted(seen.enriched_ts[p.order_id] - p.sent_at for p in done),
              "enriched_read": latency}
    result = {
        "offered_orders_per_s": rate, "pushed": len(pushes), "answered_200": sum(p.status == 200 for p in pushes),
        "pushed_in_s": round(pushed_in, 2), "push_rate": round(len(pushes) / pushed_in, 1),
        "qualifying": len(expected), "enriched": len(done),
        "p50_ms": ms(latency, 50), "p95_ms": ms(latency, 95), "p99_ms": ms(latency, 99), "max_ms": ms(latency, 100),
        "p99_from_schedule_ms": ms(from_due, 99),
        "driver_send_lag_p99_ms": ms(sorted(p.sent_at - p.due_at for p in pushes), 99),
        "stages_since_push_p50_p99_ms": {k: [ms(v, 50), ms(v, 99)] for k, v in stages.items()},
        "cpu_cores_during_push": cpu,
    }
    result["kept_up"] = (len(done) == len(expected) and result["push_rate"] >= 0.97 * rate
                         and result["p99_ms"] < KEPT_UP_P99_MS)
    result["meets_goal"] = result["kept_up"] and result["p99_ms"] < GOAL_P99_MS
    return result


@dataclass(frozen=True, slots=True)
class Layout:
    """How many processes run the ingest and the mapping service, and from which checkout (None: this one)."""

    ingest: int = 1
    mapping: int = 1
    code: str | None = None

    @classmethod
    def parse(cls, spec: str) -> Layout:
        """`N[xM][@/path]`: N ingest and M mapping processes, services imported from another checkout."""
        counts, _, code = spec.partition("@")
        ingest, _, mapping = counts.partition("x")
        return cls(int(ingest), int(mapping or 1), code or None)

    def names(self, service: str) -> list[str]:
        count = self.ingest if service == "ingest" else self.mapping
        return [service] if count == 1 else [f"{service}{i}" for i in range(count)]


async def run_layout(layout: Layout, rates: list[int], seconds: float, mix: bool) -> dict[str, Any]:
    """Start the pipeline as `layout` says, measure each rate, stop it all."""
    code = layout.code
    home = Path(f"/tmp/shopsync-e2e-{uuid.uuid4().hex[:6]}")
    ports = {n: free_port() for n in ("gateway", "sandbox", "stores", *layout.names("ingest"),
                                      *layout.names("mapping"))}
    first_mapping, first_ingest = layout.names("mapping")[0], layout.names("ingest")[0]
    env = demo_environment(home, ports["sandbox"])
    env.update({"SHOPSYNC_TOPIC_PREFIX": f"e2e{uuid.uuid4().hex[:6]}.", "SHOPSYNC_HOME": str(home),
                "SHOPSYNC_GATEWAY_PORT": str(ports["gateway"]),
                "SHOPSYNC_PUBLIC_URL": f"http://127.0.0.1:{ports['gateway']}",
                "SHOPSYNC_INGEST_PORT": str(ports[first_ingest]), "SHOPSYNC_MAPPING_PORT": str(ports[first_mapping]),
                "SHOPSYNC_MAPPING_URL": f"http://127.0.0.1:{ports[first_mapping]}",
                "SHOPSYNC_STORES_OWNER_PORT": str(ports["stores"]), "SHOPSYNC_SANDBOX_PORT": str(ports["sandbox"]),
                "SHOPSYNC_LOG_LEVEL": "WARNING", "TIKTOK_RATE_LIMIT_QPS": "10000",
                "SHOPSYNC_RECONCILE_INTERVAL_S": "0"})  # the demo's 60 s reconciliation would re-read every order
    if code:
        env["PYTHONPATH"] = code  # ahead of this checkout's editable install: an A/B against other code
    settings = load_settings(**{k.lower(): v for k, v in env.items()})
    await ensure_topics(settings)
    supervisor = Supervisor(home / "logs", env)
    url = "http://127.0.0.1:{}/{}".format
    children = [Child("sandbox", ["sandbox", "--time-factor", "60", "--seed", str(int(time.time()) % 10**6)],
                      url(ports["sandbox"], "healthz")),
                Child("stores", ["stores-owner"], url(ports["stores"], "readyz")),
                Child("gateway", ["gateway"], url(ports["gateway"], "healthz")),
                *(Child(name, ["ingest", "--port", str(ports[name])], url(ports[name], "healthz"))
                  for name in layout.names("ingest")),
                *(Child(name, ["mapping", "--port", str(ports[name])], url(ports[name], "readyz"))
                  for name in layout.names("mapping"))]
    sandbox = f"http://127.0.0.1:{ports['sandbox']}"
    results = []
    try:
        for child in children:
            supervisor.start(child)
        await wait_healthy([c.url for c in children if c.url], timeout=120)
        await link_demo_store(settings, sandbox)
        await map_every_sku(settings, sandbox)
        pids = {c.name: c.proc.pid for c in children if c.proc}
        pids[BENCH] = os.getpid()
        if (broker := find_pid("kafka.Kafka")) is not None:
            pids["broker (shared)"] = broker
        warm = await measure(settings, sandbox, ports["gateway"], WARM_UP[0], WARM_UP[1], mix, None)
        print(f"warm-up ({layout}): "
              f"{warm['enriched']}/{warm['qualifying']} enriched, "
              f"p99 {warm['p99_ms']} ms", flush=True)
        for rate in rates:
            await asyncio.sleep(2.0)
            sampler = CpuSampler(pids, alone=frozenset({BENCH}))
            result = await measure(settings, sandbox, ports["gateway"], rate, seconds, mix, sampler)
            print(result, flush=True)
            results.append(result)
    finally:
        supervisor.stop_all()
        await delete_prefixed_topics(settings)
    return {"ingest_instances": layout.ingest, "mapping_instances": layout.mapping,
            "code": code or "this checkout", "rates": results}


async def run(seconds: float, rates: list[int], layouts: list[Layout], mix: bool) -> dict[str, Any]:
    runs = [await run_layout(layout, rates, seconds, mix) for layout in layouts]
    return {"seconds_per_rate": seconds, "orders": "traffic mix" if mix else "all qualifying (LA warehouse, "
            "seller-shipped, awaiting shipment, every SKU mapped)", "layouts": runs,
            "latency": "orders.enriched read by the bench minus the webhook's write to the gateway socket",
            "kept_up_means": f"every qualifying order enriched within {DRAIN_S:.0f} s of the last push, p99 under "
                             f"{KEPT_UP_P99_MS / 1000:.0f} s (no queue growing through the window), and the driver "
                             "pushed at >= 97% of the offered rate",
            "goal": f"kept up with p99 < {GOAL_P99_MS:.0f} ms at 500 orders/s"}


def main() -> None:
    seconds = float(os.environ.get("BENCH_E2E_SECONDS", "15"))
    rates = [int(r) for r in os.environ.get("BENCH_E2E_RATES", "200,500,700").split(",")]
    layouts = [Layout.parse(spec) for spec in os.environ.get("BENCH_E2E_LAYOUTS", "1,2,1,2").split(",")]
    write_result("e2e", asyncio.run(run(seconds, rates, layouts, os.environ.get("BENCH_E2E_MIX") == "1")))


if __name__ == "__main__":
    main()

"""Replay throughput: `shopsync replay --force` of N orders, until every replayed order is re-enriched on
orders.enriched (the live mapping service does the work). Run: `python -m bench replay` (BENCH_ORDERS, default
100000)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import orjson

from bench.common import write_result
from bench.mapping import count_until, orders, produce
from services.mapping.wiring import build_service
from shared.admin import serve
from shared.settings import load_settings
from shared.topics import ORDERS_ENRICHED, ORDERS_INGESTED, topic_name
from shopsync.operator.replay import Selection, replay
from shopsync.topic_admin import delete_prefixed_topics, ensure_topics


async def run(n: int) -> dict[str, object]:
    prefix = f"benchreplay{uuid.uuid4().hex[:6]}."
    settings = load_settings(shopsync_topic_prefix=prefix)
    await ensure_topics(settings)
    await produce(settings, topic_name(ORDERS_INGESTED, prefix),
                  [(o.key.encode(), orjson.dumps(o.to_dict())) for o in orders(n)])
    service = build_service(settings)
    task = asyncio.create_task(serve(service))
    await count_until(settings, ORDERS_ENRICHED, n)
    print(f"{n} orders enriched; replaying", flush=True)
    waiter = asyncio.create_task(count_until(
        settings, ORDERS_ENRICHED, n, lambda r: dict(r.headers).get("shopsync_cause") == b"replay"))
    await asyncio.sleep(1.0)
    started = time.perf_counter()
    summary = await replay(settings, Selection(), force=True)
    republished_s = time.perf_counter() - started
    done = (await waiter)[1] - started
    service.stop()
    await task
    await delete_prefixed_topics(settings)
    return {"orders": n, "replay_selected": summary.selected, "replayed": summary.replayed,
            "replay_command_seconds": round(republished_s, 2), "replay_to_enriched_seconds": round(done, 2),
            "replay_orders_per_s": round(n / done)}


def main() -> None:
    write_result("replay", asyncio.run(run(int(os.environ.get("BENCH_ORDERS", "100000")))))


if __name__ == "__main__":
    main()

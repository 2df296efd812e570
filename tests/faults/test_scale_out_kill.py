"""Two ingest and two mapping instances as real processes; kill -9 of one of each; then every order cancelled.

The orders the killed instances accepted move to the survivors, which must withdraw them (a cancelled order that
stays active is shipped by the OMS).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from shared.topics import ORDERS_ENRICHED, ORDERS_INGESTED
from tests.faults.conftest import Service, settings_env
from tests.ingest_harness import Harness
from tests.servers import free_port
from tests.topicview import TopicView

LA = "7000000000000000001"


def newest(view: TopicView) -> dict[str, dict[str, Any]]:
    return view.latest()


async def test_survivors_withdraw_every_cancelled_order_after_kill_9(harness: Harness, tmp_path: Path) -> None:
    await harness.link("Main store", "LA Warehouse")
    base = settings_env(harness.settings, TIKTOK_API_BASE=harness.sandbox.base_url,
                        TIKTOK_AUTH_BASE=harness.sandbox.base_url,
                        SHOPSYNC_ADMIN_TOKEN="fault-token-0123456789abcdef0123456789")
    services = []
    for name in ("ingest", "ingest", "mapping", "mapping"):
        port = free_port()
        env = {**base, f"SHOPSYNC_{name.upper()}_PORT": str(port)}
        services.append(Service([name], env, f"http://127.0.0.1:{port}/readyz",
                                tmp_path / f"{name}-{len(services)}.log"))
    ingest_a, _, mapping_a, _ = services  # the first of each is killed; the second survives
    for service in services:
        await service.start()
    try:
        orders = [await harness.create_order(warehouse_id=LA) for _ in range(30)]
        keys = {f"{o['shop_id']}:{o['id']}" for o in orders}
        async with TopicView(harness.settings, ORDERS_INGESTED) as ingested, \
                TopicView(harness.settings, ORDERS_ENRICHED) as enriched:
            await ingested.until(lambda rs: {r.key.decode() for r in rs} >= keys, within=60)
            await enriched.until(lambda rs: {r.key.decode() for r in rs} >= keys, within=60)
            assert len({r.partition for r in ingested.records}) > 1, "orders on several partitions"
            ingest_a.kill9()
            mapping_a.kill9()
            for order in orders:
                await harness.move(order["id"], "CANCELLED")

            def all_withdrawn(view: TopicView) -> bool:
                latest = newest(view)
                return all(latest.get(k, {}).get("lifecycle") == "withdrawn" for k in keys)

            await ingested.until(lambda _: all_withdrawn(ingested), within=90)  # the group notices the dead ones
            await enriched.until(lambda _: all_withdrawn(enriched), within=90)
            more = [await harness.create_order(warehouse_id=LA) for _ in range(5)]  # the survivors keep working
            more_keys = {f"{o['shop_id']}:{o['id']}" for o in more}
            await enriched.until(lambda rs: {r.key.decode() for r in rs} >= more_keys, within=60)
            revisions: dict[bytes, list[int]] = {}
            for record in enriched.records:
                revisions.setdefault(record.key, []).append(orjson.loads(record.value)["revision"])
        assert all(r == sorted(set(r)) for r in revisions.values()), "revisions never go backwards"
        assert {newest(ingested)[k]["withdrawn_reason"] for k in keys} == {"status:CANCELLED"}
    finally:
        for service in services:
            service.stop()

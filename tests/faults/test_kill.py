"""kill -9 of the ingest and of the mapping service mid-stream: after a restart, nothing accepted is lost and no
older version is published after a newer one."""

from __future__ import annotations

from pathlib import Path

import orjson

from shared.topics import ORDERS_ENRICHED, ORDERS_INGESTED, ORDERS_SKIPPED
from tests.faults.conftest import Service, settings_env
from tests.ingest_harness import Harness
from tests.mapping_harness import make_order, publish
from tests.servers import free_port
from tests.topicview import TopicView
from tests.waiting import eventually

LA = "7000000000000000001"


async def test_ingest_killed_mid_stream_loses_no_accepted_webhook(harness: Harness, tmp_path: Path) -> None:
    await harness.link("Main store", "LA Warehouse")
    port = free_port()
    env = settings_env(harness.settings, TIKTOK_API_BASE=harness.sandbox.base_url,
                       TIKTOK_AUTH_BASE=harness.sandbox.base_url, SHOPSYNC_INGEST_PORT=str(port))
    ingest = Service(["ingest"], env, f"http://127.0.0.1:{port}/healthz", tmp_path / "ingest.log")
    await ingest.start()
    try:
        created = []
        for i in range(60):
            spec = {"warehouse_id": LA} if i % 3 else {"warehouse_id": LA, "status": "ON_HOLD"}
            created.append(await harness.create_order(**spec))
            if i == 25:
                ingest.kill9()
            if i == 45:
                await ingest.start()
        async def all_delivered() -> bool:  # every push the gateway answered 200 for
            return sum(1 for p in await harness.sandbox.pushes() if p["delivered"]) == len(created)

        await eventually(all_delivered, within=60, every=0.2, what="every push delivered")
        ids = {o["id"] for o in created}
        async with TopicView(harness.settings, ORDERS_INGESTED) as accepted, \
                TopicView(harness.settings, ORDERS_SKIPPED) as skipped:
            async def seen() -> bool:
                await accepted.poll(timeout_ms=100)
                await skipped.poll(timeout_ms=100)
                return {v["order_id"] for v in accepted.values()} | {v["order_id"] for v in skipped.values()} >= ids

            await eventually(seen, within=90, every=0, what="every order accepted or skipped")
            versions: dict[str, list[int]] = {}
            for value in accepted.values():
                versions.setdefault(value["order_id"], []).append(value["order_version"])
        assert all(v == sorted(v) for v in versions.values())
        assert {k for k in versions} == {o["id"] for i, o in enumerate(created) if i % 3}
    finally:
        ingest.stop()


async def test_mapping_killed_mid_stream_enriches_every_order_with_growing_revisions(harness: Harness,
                                                                                     tmp_path: Path) -> None:
    port = free_port()
    env = settings_env(harness.settings, SHOPSYNC_ADMIN_TOKEN="fault-token-0123456789abcdef0123456789",
                       SHOPSYNC_MAPPING_PORT=str(port))
    mapping = Service(["mapping"], env, f"http://127.0.0.1:{port}/readyz", tmp_path / "mapping.log")
    await mapping.start()
    try:
        orders = [make_order(f"o{i}", [("RED-L", "k1")]) for i in range(3000)]
        await publish(harness.settings, *orders[:1500])
        mapping.kill9()
        await publish(harness.settings, *orders[1500:])
        await mapping.start()
        async with TopicView(harness.settings, ORDERS_ENRICHED) as view:
            await view.until(lambda rs: len({r.key for r in rs}) == len(orders), within=120)
            revisions: dict[bytes, list[int]] = {}
            for r in view.records:
                revisions.setdefault(r.key, []).append(orjson.loads(r.value)["revision"])
        assert all(v == sorted(set(v)) for v in revisions.values())  # strictly growing per order
    finally:
        mapping.stop()

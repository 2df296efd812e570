"""The broker leading the most webhook partitions is killed -9 while orders flow sandbox → gateway → ingest → mapping
on the three-node cluster, and restarted: ingest and mapping keep running (no restart, no help) and every order
ends up enriched or skipped."""

from __future__ import annotations

import asyncio

import pytest

from services.mapping.wiring import build_service as build_mapping
from services.webhook_gateway.oauth import oauth_routes
from services.webhook_gateway.wiring import build_app
from shared.admin import serve
from shared.stores.crypto import generate_key
from shared.topics import ORDERS_ENRICHED, ORDERS_SKIPPED, TIKTOK_WEBHOOKS, topic_name
from shopsync.localcluster import LocalCluster
from shopsync.topic_admin import ensure_topics
from tests.cluster.conftest import busiest_leader, cluster_settings
from tests.ingest_harness import Harness
from tests.sandbox import Sandbox
from tests.servers import serve_app
from tests.stores.owner import running_owner
from tests.topicview import TopicView
from tests.waiting import eventually

pytestmark = pytest.mark.cluster

LA = "7000000000000000001"
ELSEWHERE = "7000000000000000002"


async def test_ingest_and_mapping_resume_by_themselves_after_a_broker_is_killed(healthy_cluster: LocalCluster,
                                                                                sandbox: Sandbox) -> None:
    cluster = healthy_cluster
    settings = cluster_settings(
        cluster, tiktok_app_key=sandbox.config.app_key, tiktok_app_secret=sandbox.config.app_secret,
        shopsync_secret_key=generate_key(), tiktok_service_id=sandbox.config.service_id,
        tiktok_authorize_url=sandbox.base_url + "/open/authorize", shopsync_reconcile_interval_s=0,
        shopsync_publish_timeout_s=1.0, shopsync_coalesce_ms=20)
    assert (await ensure_topics(settings)).problems == []
    h = Harness(settings, sandbox, "")
    app = build_app(settings, extra_routes=oauth_routes(settings))
    async with running_owner(settings, h.client()), serve_app(app) as url:
        await sandbox.control("POST", "/sandbox/config", {"webhook_url": url + "/webhooks/tiktok",
                                                          "redirect_url": url + "/oauth/tiktok/callback",
                                                          "time_factor": 600.0})
        assert (await h.link("Main store", "LA Warehouse")).status_code == 200
        await h.start_ingest()
        mapping = build_mapping(settings)
        mapping_task = asyncio.create_task(serve(mapping))
        try:
            async def started() -> bool:
                return h.service is not None and h.service.ready.is_set() and mapping.ready.is_set()
            await eventually(started, within=60, every=0.1, what="ingest and mapping consuming")
            created = [await h.create_order(warehouse_id=LA if i % 4 else ELSEWHERE) for i in range(10)]
            webhooks = topic_name(TIKTOK_WEBHOOKS, settings.shopsync_topic_prefix)
            victim = busiest_leader(await cluster.partitions(webhooks))
            await cluster.kill_node(victim)
            created += [await h.create_order(warehouse_id=LA) for _ in range(10)]  # some answered 503, retried

            async def moved_away() -> bool:
                return all(p.leader not in (victim, -1) for p in await cluster.partitions(webhooks))
            await eventually(moved_away, within=60, every=0.1,
                             what=f"the partitions of node {victim} led by the others")
            created += [await h.create_order(warehouse_id=LA) for _ in range(5)]
            await cluster.start_node(victim)
            created += [await h.create_order(warehouse_id=LA) for _ in range(5)]
            expected_enriched = {o["id"] for i, o in enumerate(created) if i >= 10 or i % 4}
            expected_skipped = {o["id"] for i, o in enumerate(created) if i < 10 and not i % 4}
            async with TopicView(settings, ORDERS_ENRICHED) as enriched, TopicView(settings, ORDERS_SKIPPED) as skipped:
                async def all_decided() -> bool:
                    await enriched.poll(timeout_ms=100)
                    await skipped.poll(timeout_ms=100)
                    return ({v["order_id"] for v in enriched.values()} >= expected_enriched and
                            {v["order_id"] for v in skipped.values()} >= expected_skipped)

                await eventually(all_decided, within=120, every=0, what="every order enriched or skipped")

            async def all_delivered() -> bool:  # TikTok's retries of what the gateway refused succeeded
                return all(p["delivered"] for p in await sandbox.pushes())
            await eventually(all_delivered, within=60, every=0.1, what="every webhook delivered")
            assert not mapping_task.done() and h.task is not None and not h.task.done()  # they rode it out
        finally:
            mapping.stop()
            await mapping_task
            h.stop.set()
            if h.task is not None:
                await h.task

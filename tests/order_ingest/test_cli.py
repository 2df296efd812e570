"""`shopsync sync` and `shopsync stores set --warehouse` against the sandbox; the ingest's admin port."""

from __future__ import annotations

import asyncio

import httpx
import orjson
from click.testing import CliRunner, Result

from services.order_ingest.wiring import build_service
from shared.admin import admin_app
from shared.topics import ORDERS_INGESTED
from shopsync.cli import cli
from tests.ingest_harness import Harness
from tests.sandbox import US_SHOP
from tests.servers import serve_app
from tests.topicview import TopicView, everything
from tests.waiting import eventually

LA, NJ = "7000000000000000001", "7000000000000000002"


async def shopsync(harness: Harness, *args: str) -> Result:
    s, box = harness.settings, harness.sandbox
    env = {"KAFKA_BOOTSTRAP_SERVERS": s.bootstrap_servers, "SHOPSYNC_TOPIC_PREFIX": s.shopsync_topic_prefix,
           "SHOPSYNC_SECRET_KEY": s.shopsync_secret_key.get_secret_value(), "TIKTOK_APP_KEY": box.config.app_key,
           "TIKTOK_APP_SECRET": box.config.app_secret, "TIKTOK_API_BASE": box.base_url,
           "TIKTOK_AUTH_BASE": box.base_url, "TIKTOK_ALLOW_HTTP": "true"}
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)


async def test_sync_has_the_ingest_decide_an_order_whose_webhook_was_dropped(harness: Harness) -> None:
    await harness.link("Main store", "LA Warehouse")
    await harness.start_ingest()
    await harness.sandbox.control("POST", "/sandbox/faults", {"drop_webhooks": True})
    lost = await harness.create_order(warehouse_id=LA)
    await harness.create_order(warehouse_id=NJ)  # not the linked warehouse: not pulled
    result = await shopsync(harness, "sync", "--shop", "Main store", "--since", "1h", "--json")
    assert result.exit_code == 0, result.output
    counts = orjson.loads(result.output[result.output.index("{"):])
    assert counts["found"] == 1 and counts["requested"] == 1 and len(str(counts["trace_id"])) == 32
    service = harness.service
    assert service is not None
    async with TopicView(harness.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 1)
        assert list(view.latest()) == [f"{US_SHOP}:{lost['id']}"]
        assert dict(view.records[0].headers)["traceparent"].decode().split("-")[1] == counts["trace_id"]
    assert service.metrics.found_by_poll._value.get() == 1
    again = await shopsync(harness, "sync", "--shop", US_SHOP, "--since", "1h")
    assert again.exit_code == 0 and "found 1 orders; the ingest decides each" in again.output
    checks = service.metrics.checks
    await eventually(lambda: checks.labels(result="up_to_date")._value.get() == 1, within=30,
                     what="the second check dropped: already decided at that version")
    assert checks.labels(result="decided")._value.get() == 1 and service.metrics.found_by_poll._value.get() == 1
    assert await harness.ingest_caught_up()
    assert len(await everything(harness.settings, ORDERS_INGESTED)) == 1  # the ingest published the order once


async def test_sync_of_an_unknown_or_unlinked_shop_fails_with_a_message(harness: Harness) -> None:
    unknown = await shopsync(harness, "sync", "--shop", "nope")
    assert unknown.exit_code != 0 and "unknown shop 'nope'" in unknown.output
    await harness.link("Main store", "")
    bad_since = await shopsync(harness, "sync", "--shop", US_SHOP, "--since", "last tuesday")
    assert bad_since.exit_code != 0 and "neither a duration like 6h nor an ISO time" in bad_since.output
    assert (await shopsync(harness, "stores", "unlink", US_SHOP)).exit_code == 0
    unlinked = await shopsync(harness, "sync", "--shop", US_SHOP)
    assert unlinked.exit_code != 0 and "deauthorized" in unlinked.output and "link it again" in unlinked.output


async def test_set_warehouse_is_resolved_at_tiktok_and_an_unknown_name_changes_nothing(harness: Harness) -> None:
    await harness.link("Main store", "LA Warehouse")
    moved = await shopsync(harness, "stores", "set", "Main store", "--warehouse", " nj warehouse ")
    assert moved.exit_code == 0, moved.output
    assert (await harness.stores()).stores[US_SHOP].warehouse_ids == [NJ]
    wrong = await shopsync(harness, "stores", "set", "Main store", "--warehouse", "Dallas")
    assert wrong.exit_code != 0
    assert '"Dallas"' in wrong.output and "LA Warehouse" in wrong.output and "NJ Warehouse" in wrong.output
    assert (await harness.stores()).stores[US_SHOP].warehouse_ids == [NJ]


async def test_admin_port_serves_health_and_metrics(harness: Harness) -> None:
    await harness.link("Main store", "")
    async with serve_app(admin_app("ingest", lambda: build_service(harness.settings, harness.client()))) as url:
        await harness.create_order(warehouse_id=LA)
        async with TopicView(harness.settings, ORDERS_INGESTED) as view:
            await view.until(lambda rs: len(rs) == 1)
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/healthz")).text == "ok"

            async def counted() -> str | None:
                text = (await http.get("/metrics")).text
                return text if "ingest_orders_accepted_total 1.0" in text else None

            text = await eventually(counted, within=10, every=0.1, what="the accepted order counted")
    for name in ("ingest_events_consumed_total", 'ingest_api_calls_total{call="get_order_detail"}',
                 "kafka_consumer_lag{group=", "orders_found_by_poll_total"):
        assert name in text

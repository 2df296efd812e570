"""The ingest end to end: TikTok pushes → gateway → Kafka → ingest → orders.ingested / orders.skipped / DLQ."""

from __future__ import annotations

import io
import time

import orjson
from aiokafka.structs import ConsumerRecord

from services.order_ingest.reconcile import reconcile_store
from shared.kafka import create_producer, read_to_end
from shared.logging import configure_logging
from shared.order_checks import is_check, parse_check
from shared.settings import Settings
from shared.stores.commands import StoreCommands
from shared.stores.crypto import TokenCipher
from shared.stores.tokens import TokenKeeper
from shared.topics import DLQ, ORDERS_INGESTED, ORDERS_SKIPPED, TIKTOK_WEBHOOKS, topic_name
from tests.ingest_harness import Harness
from tests.sandbox import MY_SHOP, US_SHOP
from tests.topicview import TopicView, everything
from tests.waiting import eventually

LA, NJ = "7000000000000000001", "7000000000000000002"


async def records(settings: Settings, topic: str) -> list[ConsumerRecord]:
    return [r async for r in read_to_end(settings, topic)]


def key(order: dict) -> str:
    return f"{order['shop_id']}:{order['id']}"


async def test_only_awaiting_shipment_seller_shipping_orders_of_the_linked_warehouse_arrive(harness: Harness) -> None:
    assert (await harness.link("Main store", "LA Warehouse")).status_code == 200
    await harness.start_ingest()
    good = await harness.create_order(warehouse_id=LA)
    skipped = {
        "status:ON_HOLD": await harness.create_order(warehouse_id=LA, status="ON_HOLD"),
        "shipping_type:TIKTOK": await harness.create_order(warehouse_id=LA, shipping_type="TIKTOK"),
        "fulfillment_type:FULFILLMENT_BY_TIKTOK": await harness.create_order(
            warehouse_id=LA, fulfillment_type="FULFILLMENT_BY_TIKTOK"),
        f"warehouse:{NJ}:not_linked": await harness.create_order(warehouse_id=NJ),
        "store:not_linked": await harness.create_order(shop_id=MY_SHOP),
    }
    async with TopicView(harness.settings, ORDERS_SKIPPED) as skips:
        await skips.until(lambda rs: len(rs) >= len(skipped))
        reasons = {v["order_id"]: v["reasons"] for v in skips.values()}
    for reason, order in skipped.items():
        assert reason in reasons[order["id"]], (reason, reasons[order["id"]])
    await eventually(harness.ingest_caught_up, every=0.2, what="the ingest through every webhook")
    ingested = {f"{v['shop_id']}:{v['order_id']}": v for v in await everything(harness.settings, ORDERS_INGESTED)}
    assert list(ingested) == [key(good)]
    order = ingested[key(good)]
    assert order["lifecycle"] == "active" and order["store_nickname"] == "Main store" and order["warehouse_id"] == LA
    assert sum(q["quantity"] for q in order["sku_quantities"]) == len(good["line_items"])


async def test_accepted_then_cancelled_is_withdrawn(harness: Harness) -> None:
    await harness.link("Main store", "")
    await harness.start_ingest()
    order = await harness.create_order(warehouse_id=NJ)
    async with TopicView(harness.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 1)
        await harness.move(order["id"], "CANCELLED")
        await view.until(lambda rs: len(rs) == 2)
        final = view.latest()[key(order)]
    assert final["lifecycle"] == "withdrawn" and final["withdrawn_reason"] == "status:CANCELLED"


async def test_duplicate_and_reordered_webhooks_end_at_the_newest_version(harness: Harness) -> None:
    await harness.link("Main store", "")
    await harness.sandbox.control("POST", "/sandbox/config", {"duplicate_webhooks": True, "reorder_webhooks": True})
    await harness.start_ingest()

    async def everything_pushed_is_ingested() -> None:  # the step is over: the next one's pushes come after it
        await eventually(lambda: harness.ingest_caught_up(copies=2), every=0.2,
                         what="both copies of every push answered and ingested")

    orders = [await harness.create_order(warehouse_id=LA, status="ON_HOLD") for _ in range(5)]
    await everything_pushed_is_ingested()
    for order in orders:
        moved = await harness.move(order["id"], "AWAITING_SHIPMENT")
        assert moved["update_time"] > order["update_time"]  # a newer version, whatever the clock's resolution
    await everything_pushed_is_ingested()
    for order in orders[:2]:
        await harness.move(order["id"], "AWAITING_COLLECTION")  # shipped: withdrawn
    await everything_pushed_is_ingested()
    per_key: dict[str, list[int]] = {}
    latest: dict[str, dict[str, object]] = {}
    for value in await everything(harness.settings, ORDERS_INGESTED):
        order_key = f"{value['shop_id']}:{value['order_id']}"
        per_key.setdefault(order_key, []).append(value["order_version"])
        latest[order_key] = value
    for versions in per_key.values():
        assert versions == sorted(versions)  # never an older version after a newer one
    assert [latest[key(o)]["lifecycle"] for o in orders] == ["withdrawn", "withdrawn", "active", "active", "active"]


async def test_429_storm_and_5xx_then_every_order_arrives(harness: Harness) -> None:
    await harness.link("Main store", "")
    await harness.start_ingest()
    await harness.sandbox.control("POST", "/sandbox/faults", {"rate_limit_storm_s": 2.0, "error_5xx_ratio": 0.3})
    orders = [await harness.create_order(warehouse_id=LA) for _ in range(10)]
    async with TopicView(harness.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len({r.key for r in rs}) == 10, within=90)
        assert set(view.latest()) == {key(o) for o in orders}
    await harness.sandbox.control("DELETE", "/sandbox/faults")


async def test_expired_token_mid_run_is_refreshed_and_ingest_continues(harness: Harness) -> None:
    await harness.link("Main store", "")
    await harness.start_ingest()
    first = await harness.create_order(warehouse_id=LA)
    async with TopicView(harness.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 1)
        before = (await harness.stores()).stores[US_SHOP].access_token_enc
        await harness.sandbox.control("POST", f"/sandbox/shops/{US_SHOP}/tokens/expire")
        second = await harness.create_order(warehouse_id=LA)
        await view.until(lambda rs: len(rs) == 2)
        assert set(view.latest()) == {key(first), key(second)}
    assert (await harness.stores()).stores[US_SHOP].access_token_enc != before  # the new token was stored


async def test_deauthorization_marks_the_store_and_stops_api_calls(harness: Harness) -> None:
    await harness.link("Main store", "")
    await harness.start_ingest()
    await harness.sandbox.control("POST", f"/sandbox/shops/{US_SHOP}/deauthorize")

    async def deauthorized() -> bool:
        return (await harness.stores()).stores[US_SHOP].status == "deauthorized"

    await eventually(deauthorized, every=0.1, what="the store marked deauthorized")
    calls_before = len(harness.sandbox.app.state.api.call_log)
    order = harness.sandbox.world.create_order({"shop_id": US_SHOP})
    harness.sandbox.app.state.pusher.push(1, US_SHOP, {"order_id": order["id"], "order_status": "AWAITING_SHIPMENT",
                                                       "update_time": order["update_time"]})
    async with TopicView(harness.settings, ORDERS_SKIPPED) as view:
        await view.until(lambda rs: len(rs) == 1)
        assert view.values()[0]["reasons"] == ["store:deauthorized"]
    assert len(harness.sandbox.app.state.api.call_log) == calls_before


async def test_auto_sync_off_skips_with_reason(harness: Harness) -> None:
    await harness.link("Main store", "", auto_sync_orders=False)
    await harness.start_ingest()
    await harness.create_order(warehouse_id=LA)
    async with TopicView(harness.settings, ORDERS_SKIPPED) as view:
        await view.until(lambda rs: len(rs) == 1)
        assert view.values()[0]["reasons"] == ["store:auto_sync_off"]


async def test_reconciling_a_store_requests_a_check_of_each_order_found_this_instance_owns(harness: Harness) -> None:
    await harness.link("Main store", "LA Warehouse")
    await harness.sandbox.control("POST", "/sandbox/faults", {"drop_webhooks": True})
    lost = await harness.create_order(warehouse_id=LA)
    await harness.create_order(warehouse_id=NJ)  # another warehouse: not pulled
    table = await harness.stores()
    producer = create_producer(harness.settings)
    await producer.start()
    client = harness.client()
    try:
        async with StoreCommands(harness.settings, producer, requested_by="test") as commands:
            tokens = TokenKeeper(table, commands, client,
                                 TokenCipher(harness.settings.shopsync_secret_key.get_secret_value()))
            since = int(time.time()) - 3600
            store = table.stores[US_SHOP]
            none = await reconcile_store(store, client, tokens, producer, harness.settings, since,
                                         requested_by="test", owns=lambda _: False)  # another instance's orders
            counts = await reconcile_store(store, client, tokens, producer, harness.settings, since,
                                           requested_by="test")
    finally:
        await client.aclose()
        await producer.stop()
    assert none["found"] == 0 and counts["found"] == counts["requested"] == 1
    checks = [r for r in await records(harness.settings, TIKTOK_WEBHOOKS) if is_check(r.headers)]
    assert [(r.key, parse_check(r.value).update_time) for r in checks] == [(key(lost).encode(), lost["update_time"])]
    await harness.start_ingest()  # the check is decided by the ingest, like a webhook
    async with TopicView(harness.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 1)
        assert list(view.latest()) == [key(lost)]


async def test_poison_records_go_to_the_dlq_and_do_not_stop_the_partition(harness: Harness) -> None:
    await harness.link("Main store", "")
    await harness.start_ingest()
    producer = create_producer(harness.settings)
    await producer.start()
    topic = topic_name(TIKTOK_WEBHOOKS, harness.settings.shopsync_topic_prefix)
    for poison in (b"not json", b"[1,2]", b'{"type":"x"}'):
        await producer.send_and_wait(topic, poison, key=f"{US_SHOP}:1".encode(), partition=0)
    await producer.stop()
    order = await harness.create_order(warehouse_id=LA)
    async with TopicView(harness.settings, DLQ) as dlq:
        await dlq.until(lambda rs: len(rs) == 3)
        reasons = {dict(r.headers)["shopsync_dlq_reason"].decode().split(":")[0] for r in dlq.records}
        assert reasons == {"undecodable_webhook"}
        assert {r.value for r in dlq.records} == {b"not json", b"[1,2]", b'{"type":"x"}'}
    async with TopicView(harness.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 1)
        assert list(view.latest()) == [key(order)]


async def test_tokens_never_appear_in_logs(harness: Harness) -> None:
    captured = io.StringIO()
    configure_logging("DEBUG", "json", stream=captured)
    try:
        await harness.link("Main store", "")
        await harness.start_ingest()
        await harness.sandbox.control("POST", f"/sandbox/shops/{US_SHOP}/tokens/expire")
        await harness.create_order(warehouse_id=LA)
        async with TopicView(harness.settings, ORDERS_INGESTED) as view:
            await view.until(lambda rs: len(rs) == 1)
    finally:
        configure_logging("INFO", "json")
    grants = harness.sandbox.world.grants.values()
    secrets = [g.access_token for g in grants] + [g.refresh_token for g in grants]
    secrets += [harness.sandbox.config.app_secret, harness.settings.shopsync_secret_key.get_secret_value()]
    text = captured.getvalue()
    assert "store_token_refreshed" in text  # the run did log, including the refresh
    assert not [s for s in secrets if s in text]


async def test_log_lines_of_an_order_carry_the_trace_started_at_the_gateway(harness: Harness) -> None:
    captured = io.StringIO()
    configure_logging("DEBUG", "json", stream=captured)  # the gateway logs each published webhook at debug
    try:
        await harness.link("Main store", "")
        await harness.start_ingest()
        order = await harness.create_order(warehouse_id=LA)
        async with TopicView(harness.settings, ORDERS_INGESTED) as view:
            await view.until(lambda rs: len(rs) == 1)
            published_trace = dict(view.records[0].headers)["traceparent"].decode().split("-")[1]
    finally:
        configure_logging("INFO", "json")
    lines = [orjson.loads(line) for line in captured.getvalue().splitlines() if line.startswith("{")]
    gateway = next(line for line in lines if line.get("event") == "webhook_published")
    decided = next(line for line in lines if line.get("event") == "order_decided")
    assert gateway["trace_id"] == decided["trace_id"] == published_trace
    assert decided["order_id"] == order["id"] and decided["outcome"] == "accepted"


async def test_scheduled_reconciliation_delivers_an_order_whose_webhook_was_lost(harness: Harness) -> None:
    await harness.link("Main store", "LA Warehouse")
    await harness.sandbox.control("POST", "/sandbox/faults", {"drop_webhooks": True})
    lost = await harness.create_order(warehouse_id=LA)
    harness.settings = harness.settings.model_copy(update={"shopsync_reconcile_interval_s": 0.3})
    await harness.start_ingest()
    async with TopicView(harness.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 1)
        assert list(view.latest()) == [key(lost)]
    service = harness.service
    assert service is not None
    await eventually(lambda: service.metrics.found_by_poll._value.get() == 1, within=10,
                     what="the order counted as found by the poll")

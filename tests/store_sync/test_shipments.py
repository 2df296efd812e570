"""Shipments from the OMS reach TikTok through the right endpoint, once, with every outcome on sync.results."""

from __future__ import annotations

from typing import Any

from shared.topics import DLQ
from tests.store_sync.conftest import MY_SHOP, US_SHOP, SyncHarness
from tests.topicview import TopicView


async def linked(sync: SyncHarness, **options: Any) -> None:
    assert (await sync.base.link("US store", "LA Warehouse", shop_id=US_SHOP, **options)).status_code == 200
    assert (await sync.base.link("MY store", "KL Warehouse", shop_id=MY_SHOP)).status_code == 200


def of(results: list[dict[str, Any]], order_id: str) -> list[dict[str, Any]]:
    return [r for r in results if r["kind"] == "shipment" and r["order_id"] == order_id]


async def shipments(sync: SyncHarness, order_id: str) -> list[dict[str, Any]]:
    return [s for s in await sync.sandbox_json("GET", "/sandbox/shipments") if s["order_id"] == order_id]


async def test_us_and_my_shops_ship_through_their_market_endpoints(sync: SyncHarness) -> None:
    await linked(sync)
    us = await sync.base.create_order(shop_id=US_SHOP)
    my = await sync.base.create_order(shop_id=MY_SHOP)
    await sync.start()
    await sync.ship(US_SHOP, us["id"], "usps", "TRK10001")
    await sync.ship(MY_SHOP, my["id"], "J&T  express", "MYTRK0001")
    results = await sync.results(lambda rs: of(rs, us["id"]) and of(rs, my["id"]))
    assert [(r["status"], r["endpoint"]) for r in of(results, us["id"])] == [("applied", "mark_package_shipped")]
    assert [(r["status"], r["endpoint"]) for r in of(results, my["id"])] == [("applied", "ship_package")]
    assert [s["endpoint"] for s in await shipments(sync, us["id"])] == ["mark_package_shipped"]
    assert [(s["endpoint"], s["tracking_number"]) for s in await shipments(sync, my["id"])] == [
        ("ship_package", "MYTRK0001")]
    order = await sync.sandbox_json("GET", f"/sandbox/orders/{us['id']}")
    assert order["status"] == "AWAITING_COLLECTION"
    assert {line["tracking_number"] for line in order["line_items"]} == {"TRK10001"}


async def test_unknown_carrier_fails_and_lists_the_valid_names(sync: SyncHarness) -> None:
    await linked(sync)
    order = await sync.base.create_order(shop_id=US_SHOP)
    await sync.start()
    await sync.ship(US_SHOP, order["id"], "Pony Express", "TRK10002")
    [result] = of(await sync.results(lambda rs: of(rs, order["id"])), order["id"])
    assert (result["status"], result["reason"]) == ("failed", "shipment:unknown_carrier")
    assert "USPS" in result["detail"] and "FedEx" in result["detail"] and "USPS" in result["valid_carriers"]
    assert await shipments(sync, order["id"]) == []


async def test_a_redelivered_shipment_makes_one_call_even_across_a_restart(sync: SyncHarness) -> None:
    await linked(sync)
    order = await sync.base.create_order(shop_id=US_SHOP)
    await sync.start()
    await sync.ship(US_SHOP, order["id"], "USPS", "TRK10003", shipment_id="oms-1")
    await sync.ship(US_SHOP, order["id"], "USPS", "TRK10003", shipment_id="oms-1")
    await sync.results(lambda rs: len(of(rs, order["id"])) == 2)
    await sync.halt()
    await sync.start()
    await sync.ship(US_SHOP, order["id"], "USPS", "TRK10003", shipment_id="oms-1")
    results = of(await sync.results(lambda rs: len(of(rs, order["id"])) == 3), order["id"])
    assert [r["status"] for r in results] == ["applied"] * 3
    assert len(await shipments(sync, order["id"])) == 1


async def test_a_new_tracking_number_for_a_shipped_order_is_a_correction(sync: SyncHarness) -> None:
    await linked(sync)
    order = await sync.base.create_order(shop_id=US_SHOP)
    await sync.start()
    await sync.ship(US_SHOP, order["id"], "USPS", "TRK10004")
    await sync.results(lambda rs: of(rs, order["id"]))
    await sync.ship(US_SHOP, order["id"], "ups", "TRK10005")
    results = of(await sync.results(lambda rs: len(of(rs, order["id"])) == 2), order["id"])
    assert [(r["status"], r["endpoint"]) for r in results] == [("applied", "mark_package_shipped"),
                                                               ("applied", "update_shipping_info")]
    assert [s["endpoint"] for s in await shipments(sync, order["id"])] == ["mark_package_shipped",
                                                                           "update_shipping_info"]
    lines = (await sync.sandbox_json("GET", f"/sandbox/orders/{order['id']}"))["line_items"]
    assert {line["tracking_number"] for line in lines} == {"TRK10005"}
    await sync.ship(US_SHOP, order["id"], "USPS", "TRK10006")  # TikTok allows one correction
    results = of(await sync.results(lambda rs: len(of(rs, order["id"])) == 3), order["id"])
    assert (results[-1]["status"], results[-1]["reason"]) == ("failed", "shipment:update_limit_reached")


async def test_cancelled_and_tiktok_shipped_orders_are_not_shipped(sync: SyncHarness) -> None:
    await linked(sync)
    cancelled = await sync.base.create_order(shop_id=US_SHOP)
    await sync.base.move(cancelled["id"], "CANCELLED")
    platform = await sync.base.create_order(shop_id=US_SHOP, shipping_type="TIKTOK")
    await sync.start()
    await sync.ship(US_SHOP, cancelled["id"], "USPS", "TRK10007")
    await sync.ship(US_SHOP, platform["id"], "USPS", "TRK10008")
    results = await sync.results(lambda rs: of(rs, cancelled["id"]) and of(rs, platform["id"]))
    assert [(r["status"], r["reason"]) for r in of(results, cancelled["id"])] == [
        ("failed", "shipment:order_cancelled")]
    assert [(r["status"], r["reason"]) for r in of(results, platform["id"])] == [
        ("skipped", "shipment:not_seller_shipping")]
    assert await shipments(sync, cancelled["id"]) == [] and await shipments(sync, platform["id"]) == []


async def test_a_partial_shipment_ships_only_its_lines(sync: SyncHarness) -> None:
    await linked(sync)
    order = await sync.base.create_order(shop_id=US_SHOP, lines=[{"seller_sku": "RED-S", "quantity": 2}])
    first, second = [line["id"] for line in order["line_items"]]
    await sync.start()
    await sync.ship(US_SHOP, order["id"], "USPS", "TRK20001", lines=[first])
    await sync.results(lambda rs: of(rs, order["id"]))
    after_first = await sync.sandbox_json("GET", f"/sandbox/orders/{order['id']}")
    assert after_first["status"] == "PARTIALLY_SHIPPING"
    assert {line["id"]: line.get("tracking_number") or None for line in after_first["line_items"]} == {
        first: "TRK20001", second: None}
    await sync.ship(US_SHOP, order["id"], "USPS", "TRK20002")  # the rest
    results = of(await sync.results(lambda rs: len(of(rs, order["id"])) == 2), order["id"])
    assert [r["shipped_line_item_ids"] for r in results] == [[first], [second]]
    assert (await sync.sandbox_json("GET", f"/sandbox/orders/{order['id']}"))["status"] == "AWAITING_COLLECTION"


async def test_a_429_storm_is_waited_out_not_failed(sync: SyncHarness) -> None:
    await linked(sync)
    order = await sync.base.create_order(shop_id=US_SHOP)
    await sync.start()
    await sync.sandbox_json("POST", "/sandbox/faults", {"rate_limit_storm_s": 3})
    await sync.ship(US_SHOP, order["id"], "USPS", "TRK10009")
    [result] = of(await sync.results(lambda rs: of(rs, order["id"])), order["id"])
    assert result["status"] == "applied" and result["attempts"] >= 2
    assert len(await shipments(sync, order["id"])) == 1


async def test_stores_with_shipment_sync_off_are_left_alone(sync: SyncHarness) -> None:
    await linked(sync, auto_sync_shipments=False)
    order = await sync.base.create_order(shop_id=US_SHOP)
    await sync.start()
    await sync.ship(US_SHOP, order["id"], "USPS", "TRK10010")
    [result] = of(await sync.results(lambda rs: of(rs, order["id"])), order["id"])
    assert (result["status"], result["reason"]) == ("skipped", "shipment:store_sync_off")
    assert "--auto-sync-shipments on" in result["detail"]


async def test_poison_records_go_to_the_dlq_and_the_feeds_keep_going(sync: SyncHarness) -> None:
    from shared.topics import OMS_INVENTORY, OMS_SHIPMENTS

    await linked(sync)
    order = await sync.base.create_order(shop_id=US_SHOP)
    await sync.publish(OMS_SHIPMENTS, [(f"{US_SHOP}:{order['id']}", b"{not json"),
                                       (f"{US_SHOP}:{order['id']}", b'{"shipment_id": "x"}')])
    await sync.publish(OMS_INVENTORY, [
        ("P1", b'{"product_code": "P1", "available": -3, "as_of": "2026-01-01T00:00:00Z"}')])
    await sync.ship(US_SHOP, order["id"], "USPS", "TRK10011")
    await sync.start()
    await sync.results(lambda rs: of(rs, order["id"]))
    async with TopicView(sync.settings, DLQ) as dlq:
        await dlq.until(lambda rs: len(rs) >= 3)
        reasons = sorted(dict(r.headers)["shopsync_dlq_reason"].decode() for r in dlq.records)
    assert reasons == ["inventory:negative_quantity", "shipment:invalid_json", "shipment:missing_field:shop_id"]


async def test_system_busy_codes_are_retried_by_the_client_alone(sync: SyncHarness) -> None:
    await linked(sync)
    order = await sync.base.create_order(shop_id=US_SHOP)
    await sync.sandbox_json("POST", "/sandbox/faults", {"fulfillment_busy": 2, "fulfillment_busy_code": 21042076})
    await sync.start()
    await sync.ship(US_SHOP, order["id"], "USPS", "TRK10020")
    [result] = of(await sync.results(lambda rs: of(rs, order["id"])), order["id"])
    # attempts = HTTP calls: Get Order Detail, shipping providers, then Mark Package As Shipped three times
    assert (result["status"], result["endpoint"], result["attempts"]) == ("applied", "mark_package_shipped", 5)
    calls = [c for c in await sync.sandbox_json("GET", "/sandbox/calls")
             if c["path"] == f"/fulfillment/202309/orders/{order['id']}/packages"]
    assert len(calls) == 3  # two answered "busy", the third passed: no second retry layer around the client
    assert [s["endpoint"] for s in await shipments(sync, order["id"])] == ["mark_package_shipped"]


async def test_a_correction_outside_the_non_us_window_names_it(sync: SyncHarness) -> None:
    import time

    await linked(sync)
    order = await sync.base.create_order(shop_id=MY_SHOP)
    await sync.start()
    await sync.ship(MY_SHOP, order["id"], "J&T Express", "MYTRK0020")
    await sync.results(lambda rs: of(rs, order["id"]))
    aged = int(time.time()) - 80 * 3600
    await sync.sandbox_json("POST", f"/sandbox/orders/{order['id']}/rts_time", {"rts_time": aged})
    await sync.ship(MY_SHOP, order["id"], "J&T Express", "MYTRK0021")
    results = of(await sync.results(lambda rs: len(of(rs, order["id"])) == 2), order["id"])
    assert (results[-1]["status"], results[-1]["reason"], results[-1]["tiktok_code"]) == (
        "failed", "shipment:update_window_passed", 21011050)
    assert "72 h" not in results[-1]["detail"]


async def test_attempts_are_the_http_calls_made_when_tiktok_answers_5xx(sync: SyncHarness) -> None:
    assert (await sync.base.link("US store", "LA Warehouse", shop_id=US_SHOP,
                                 auto_sync_inventory=False)).status_code == 200  # no catalog calls meanwhile
    order = await sync.base.create_order(shop_id=US_SHOP)
    await sync.start()
    sync.base.sandbox.app.state.faults.server_errors = 3  # type: ignore[attr-defined]  # test-only app state
    await sync.ship(US_SHOP, order["id"], "USPS", "TRK10030")
    [result] = of(await sync.results(lambda rs: of(rs, order["id"])), order["id"])
    reads = [c for c in await sync.calls("/order/202309/orders") if c["query"].get("ids") == order["id"]]
    # 4 reads (3 answered 500, then one passed), the shipping providers and the write: 6 HTTP calls
    assert (result["status"], result["attempts"], len(reads)) == ("applied", 6, 4)
    assert len(await sync.calls(f"/fulfillment/202309/orders/{order['id']}/packages")) == 1

"""The sandbox's seller-shipping (§8) and inventory (§9) paths, driven through the real signed client."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared.tiktok.client import TikTokClient
from shared.tiktok.errors import TikTokError
from shared.tiktok.models import ShopAuth
from tests.sandbox import MY_SHOP, US_SHOP, Sandbox

LA, NJ, SHARED_A = "7000000000000000001", "7000000000000000002", "7000000000000000004"
KL = "7100000000000000001"
RED = "1729592969700000000"  # US product 0: one SKU, 100 in LA
BLUE = "1729592969700000001"  # US product 1: two SKUs
BLACK = "1729592969700000003"  # US product 3: LA 100 + NJ 60
USPS, UPS = "7117858858072016686", "7117859084333745966"
JNT = "7208502187360519982"


async def call(client: TikTokClient, auth: ShopAuth, method: str, path: str, *,
               params: dict[str, Any] | None = None, body: dict[str, Any] | None = None) -> dict[str, Any]:
    return await client._call(method, client._api_base, path, shop=auth, params=params, body=body)


async def fails(code: int, client: TikTokClient, auth: ShopAuth, method: str, path: str, **kw: Any) -> TikTokError:
    with pytest.raises(TikTokError) as info:
        await call(client, auth, method, path, **kw)
    assert info.value.code == code, info.value
    return info.value


async def new_order(sandbox: Sandbox, shop_id: str = US_SHOP, **spec: Any) -> dict[str, Any]:
    spec.setdefault("lines", [{"sku_id": f"{BLUE}00", "quantity": 1}, {"sku_id": f"{BLUE}01", "quantity": 1}])
    answer = await sandbox.control("POST", "/sandbox/orders", {"shop_id": shop_id, **spec})
    assert answer.status_code == 201, answer.text
    return answer.json()


async def order(sandbox: Sandbox, order_id: str) -> dict[str, Any]:
    return (await sandbox.control("GET", f"/sandbox/orders/{order_id}")).json()


def pushes(sandbox: Sandbox, event_type: int) -> list[dict[str, Any]]:
    return [orjson.loads(p.body) for p in sandbox.app.state.pusher.log if p.type == event_type]


def mark(order_id: str) -> str:
    return f"/fulfillment/202309/orders/{order_id}/packages"


def ship(package_id: str) -> str:
    return f"/fulfillment/202309/packages/{package_id}/ship"


# ---- shipping ------------------------------------------------------------------------------------------------
async def test_delivery_options_and_shipping_providers(sandbox: Sandbox, tiktok_client: TikTokClient) -> None:
    auth = await sandbox.authorize(tiktok_client)
    options = await call(tiktok_client, auth, "GET", f"/logistics/202309/warehouses/{NJ}/delivery_options")
    assert [(o["id"], o["type"]) for o in options["delivery_options"]] == [("dopt-us-seller", "SEND_BY_SELLER")]
    providers = await call(tiktok_client, auth, "GET",
                           "/logistics/202309/delivery_options/dopt-us-seller/shipping_providers")
    assert [p["name"] for p in providers["shipping_providers"]] == ["USPS", "UPS", "FedEx", "DHL eCommerce"]
    assert all(len(p["id"]) == 19 for p in providers["shipping_providers"])
    assert (await new_order(sandbox))["delivery_option_id"] == "dopt-us-seller"
    await fails(21008111, tiktok_client, auth, "GET", f"/logistics/202309/warehouses/{KL}/delivery_options")
    await fails(21008116, tiktok_client, auth, "GET",
                "/logistics/202309/delivery_options/dopt-my-seller/shipping_providers")


async def test_us_mark_package_shipped(sandbox: Sandbox, tiktok_client: TikTokClient) -> None:
    auth = await sandbox.authorize(tiktok_client)
    created = await new_order(sandbox)
    assert created["packages"] == [] and all(line["package_id"] == "" for line in created["line_items"])
    data = await call(tiktok_client, auth, "POST", mark(created["id"]),
                      body={"tracking_number": "1Z999AA10123456784", "shipping_provider_id": UPS})
    line_ids = [line["id"] for line in created["line_items"]]
    assert data["order_id"] == created["id"] and data["order_line_item_ids"] == line_ids
    assert data["warning"] == {"message": ""} and data["package_id"]
    shipped = await order(sandbox, created["id"])
    assert shipped["status"] == "AWAITING_COLLECTION" and shipped["update_time"] >= created["update_time"]
    assert shipped["packages"] == [{"id": data["package_id"]}]
    assert shipped["tracking_number"] == "1Z999AA10123456784" and shipped["shipping_provider"] == "UPS"
    for line in shipped["line_items"]:
        assert (line["package_id"], line["package_status"], line["display_status"]) == (
            data["package_id"], "PROCESSING", "AWAITING_COLLECTION")
        assert line["shipping_provider_id"] == UPS and line["rts_time"] > 0
    assert [(p["data"]["order_id"], p["data"]["order_status"]) for p in pushes(sandbox, 1)][-1] == (
        created["id"], "AWAITING_COLLECTION")
    journal = (await sandbox.control("GET", "/sandbox/shipments")).json()
    assert journal == [{"endpoint": "mark_package_shipped", "shop_id": US_SHOP, "order_id": created["id"],
                        "package_id": data["package_id"], "line_item_ids": line_ids,
                        "tracking_number": "1Z999AA10123456784", "shipping_provider_id": UPS,
                        "shipping_provider_name": "UPS", "at": journal[0]["at"]}]
    # shipping it again: the order is already shipped
    await fails(21011006, tiktok_client, auth, "POST", mark(created["id"]),
                body={"tracking_number": "1Z999AA10123456785", "shipping_provider_id": UPS})
    # a tracking number matching no carrier is a warning, not a failure
    other = await new_order(sandbox)
    warned = await call(tiktok_client, auth, "POST", mark(other["id"]),
                        body={"tracking_number": "XYZ123456", "shipping_provider_id": USPS})
    assert warned["warning"]["message"] == "tracking number matches no provider"


async def test_us_partial_shipment(sandbox: Sandbox, tiktok_client: TikTokClient) -> None:
    auth = await sandbox.authorize(tiktok_client)
    created = await new_order(sandbox)
    first, second = (line["id"] for line in created["line_items"])
    body = {"tracking_number": "9400100000000000000001", "shipping_provider_id": USPS}
    data = await call(tiktok_client, auth, "POST", mark(created["id"]), body=body | {"order_line_item_ids": [first]})
    assert data["order_line_item_ids"] == [first]
    partial = await order(sandbox, created["id"])
    assert partial["status"] == "PARTIALLY_SHIPPING"
    assert [line["display_status"] for line in partial["line_items"]] == ["AWAITING_COLLECTION", "AWAITING_SHIPMENT"]
    assert [line["package_id"] for line in partial["line_items"]] == [data["package_id"], ""]
    await fails(21008099, tiktok_client, auth, "POST", mark(created["id"]),
                body=body | {"order_line_item_ids": [first]})
    await fails(21011048, tiktok_client, auth, "POST", mark(created["id"]), body=body)
    await fails(21011048, tiktok_client, auth, "POST", mark(created["id"]),
                body=body | {"order_line_item_ids": ["123"]})
    rest = await call(tiktok_client, auth, "POST", mark(created["id"]),
                      body=body | {"order_line_item_ids": [second], "tracking_number": "9400100000000000000002"})
    done = await order(sandbox, created["id"])
    assert done["status"] == "AWAITING_COLLECTION"
    assert done["packages"] == [{"id": data["package_id"]}, {"id": rest["package_id"]}]
    assert [p["data"]["order_status"] for p in pushes(sandbox, 1)][-2:] == ["PARTIALLY_SHIPPING", "AWAITING_COLLECTION"]


async def test_us_refusals(sandbox: Sandbox, tiktok_client: TikTokClient) -> None:
    auth = await sandbox.authorize(tiktok_client)
    good = {"tracking_number": "9400100000000000000001", "shipping_provider_id": USPS}
    created = await new_order(sandbox)
    for bad in ({"shipping_provider_id": JNT}, {"shipping_provider_id": "1"}, {"tracking_number": "12345"},
                {"tracking_number": "94001 000"}, {"tracking_number": ""}):
        await fails(21011022, tiktok_client, auth, "POST", mark(created["id"]), body=good | bad)
    assert (await order(sandbox, created["id"]))["status"] == "AWAITING_SHIPMENT"
    await fails(21008111, tiktok_client, auth, "POST", mark("999"), body=good)
    my_order = await new_order(sandbox, MY_SHOP, lines=None)
    await fails(21008111, tiktok_client, auth, "POST", mark(my_order["id"]), body=good)
    await sandbox.control("POST", f"/sandbox/orders/{created['id']}/status", {"status": "CANCELLED"})
    await fails(21011041, tiktok_client, auth, "POST", mark(created["id"]), body=good)
    tiktok_shipped = await new_order(sandbox, shipping_type="TIKTOK")
    await fails(21011004, tiktok_client, auth, "POST", mark(tiktok_shipped["id"]), body=good)
    on_hold = await new_order(sandbox, status="ON_HOLD")
    error = await fails(21011004, tiktok_client, auth, "POST", mark(on_hold["id"]), body=good)
    assert "ON_HOLD" in error.message
    # (what Ship Package answers in this market is not documented: docs/sandbox.md, nothing here depends on it)
    shipped = await new_order(sandbox)
    await call(tiktok_client, auth, "POST", mark(shipped["id"]), body=good)
    await fails(21008111, tiktok_client, auth, "POST", ship("123456"), body={"self_shipment": good})
    assert [s["order_id"] for s in (await sandbox.control("GET", "/sandbox/shipments")).json()] == [shipped["id"]]


async def test_my_ship_package(sandbox: Sandbox, tiktok_client: TikTokClient) -> None:
    auth = await sandbox.authorize(tiktok_client, MY_SHOP)
    created = await new_order(sandbox, MY_SHOP, lines=[{"seller_sku": "RED-S-MY", "quantity": 2}])
    package_id = created["packages"][0]["id"]
    assert [line["package_id"] for line in created["line_items"]] == [package_id, package_id]
    providers = await call(tiktok_client, auth, "GET",
                           f"/logistics/202309/delivery_options/{created['delivery_option_id']}/shipping_providers")
    assert [p["name"] for p in providers["shipping_providers"]] == ["J&T Express", "Pos Malaysia", "DHL eCommerce"]
    body = {"self_shipment": {"tracking_number": "JT0001234567", "shipping_provider_id": JNT},
            "handover_method": "DROP_OFF"}
    await fails(21008106, tiktok_client, auth, "POST", mark(created["id"]), body=body["self_shipment"])
    await fails(21011022, tiktok_client, auth, "POST", ship(package_id),
                body={"self_shipment": {"tracking_number": "JT0001234567", "shipping_provider_id": USPS}})
    assert await call(tiktok_client, auth, "POST", ship(package_id), body=body) == {}
    shipped = await order(sandbox, created["id"])
    assert shipped["status"] == "AWAITING_COLLECTION" and shipped["packages"] == [{"id": package_id}]
    assert {(line["tracking_number"], line["shipping_provider_name"]) for line in shipped["line_items"]} == {
        ("JT0001234567", "J&T Express")}
    assert pushes(sandbox, 1)[-1]["data"]["order_status"] == "AWAITING_COLLECTION"
    await fails(21008099, tiktok_client, auth, "POST", ship(package_id), body=body)
    journal = (await sandbox.control("GET", "/sandbox/shipments")).json()
    assert [(j["endpoint"], j["shop_id"], j["package_id"]) for j in journal] == [("ship_package", MY_SHOP,
                                                                                  package_id)]
    cancelled = await new_order(sandbox, MY_SHOP, lines=None)
    await sandbox.control("POST", f"/sandbox/orders/{cancelled['id']}/status", {"status": "CANCELLED"})
    await fails(21011041, tiktok_client, auth, "POST", ship(cancelled["packages"][0]["id"]), body=body)


async def test_shipping_info_update_once_within_72h(sandbox: Sandbox, tiktok_client: TikTokClient) -> None:
    auth = await sandbox.authorize(tiktok_client)
    good = {"tracking_number": "9400100000000000000001", "shipping_provider_id": USPS}
    created = await new_order(sandbox)
    update = f"/fulfillment/202309/orders/{created['id']}/shipping_info/update"
    await fails(21011043, tiktok_client, auth, "POST", update, body=good)
    package_id = (await call(tiktok_client, auth, "POST", mark(created["id"]), body=good))["package_id"]
    fixed = {"tracking_number": "1Z999AA10123456784", "shipping_provider_id": UPS}
    await fails(21011022, tiktok_client, auth, "POST", update, body=fixed | {"shipping_provider_id": JNT})
    assert await call(tiktok_client, auth, "POST", update, body=fixed) == {}
    after = await order(sandbox, created["id"])
    assert {(line["tracking_number"], line["shipping_provider_name"]) for line in after["line_items"]} == {
        ("1Z999AA10123456784", "UPS")}
    assert after["tracking_number"] == "1Z999AA10123456784" and after["status"] == "AWAITING_COLLECTION"
    error = await fails(21011051, tiktok_client, auth, "POST", update, body=good)
    assert "once" in error.message
    await fails(21011051, tiktok_client, auth, "POST",
                f"/fulfillment/202309/packages/{package_id}/shipping_info/update", body=good)
    journal = (await sandbox.control("GET", "/sandbox/shipments")).json()
    assert [(j["endpoint"], j["package_id"], j["tracking_number"]) for j in journal] == [
        ("mark_package_shipped", package_id, "9400100000000000000001"),
        ("update_shipping_info", package_id, "1Z999AA10123456784")]
    # a package-level update, after 72 h
    old = await new_order(sandbox)
    old_package = (await call(tiktok_client, auth, "POST", mark(old["id"]), body=good))["package_id"]
    aged = await sandbox.control("POST", f"/sandbox/orders/{old['id']}/rts_time",
                                 {"rts_time": int(sandbox.world.clock()) - 73 * 3600})
    assert aged.status_code == 200
    await fails(21011049, tiktok_client, auth, "POST",
                f"/fulfillment/202309/packages/{old_package}/shipping_info/update", body=fixed)
    await sandbox.control("POST", f"/sandbox/orders/{old['id']}/rts_time",
                          {"rts_time": int(sandbox.world.clock()) - 71 * 3600})
    assert await call(tiktok_client, auth, "POST",
                      f"/fulfillment/202309/packages/{old_package}/shipping_info/update", body=fixed) == {}
    assert (await sandbox.control("POST", "/sandbox/orders/1/rts_time", {"rts_time": 1})).status_code == 404


# ---- products and inventory ---------------------------------------------------------------------------------
SEARCH = "/product/202309/products/search"
INVENTORY_SEARCH = "/product/202309/inventory/search"


def update(product_id: str) -> str:
    return f"/product/202309/products/{product_id}/inventory/update"


async def test_search_products(sandbox: Sandbox, tiktok_client: TikTokClient) -> None:
    auth = await sandbox.authorize(tiktok_client)
    data = await call(tiktok_client, auth, "POST", SEARCH, params={"page_size": 10},
                      body={"seller_skus": ["BLACK-S", "NOPE"]})
    assert data["total_count"] == 1 and data["next_page_token"] == ""
    product = data["products"][0]
    assert (product["id"], product["status"]) == (BLACK, "ACTIVATE")
    assert product["skus"][0]["seller_sku"] == "BLACK-S"
    assert product["skus"][0]["price"]["currency"] == "USD"
    assert product["skus"][0]["inventory"] == [{"warehouse_id": LA, "quantity": 100},
                                               {"warehouse_id": NJ, "quantity": 60}]
    first = await call(tiktok_client, auth, "POST", SEARCH, params={"page_size": 4}, body={})
    rest = await call(tiktok_client, auth, "POST", SEARCH, params={"page_size": 4,
                                                                   "page_token": first["next_page_token"]}, body={})
    assert first["total_count"] == 6 and len(first["products"]) == 4 and first["next_page_token"]
    assert len(rest["products"]) == 2 and rest["next_page_token"] == ""
    await fails(12019027, tiktok_client, auth, "POST", SEARCH, params={"page_size": 10},
                body={"seller_skus": [f"S{i}" for i in range(11)]})
    await fails(36009004, tiktok_client, auth, "POST", SEARCH, body={})
    await fails(36009004, tiktok_client, auth, "POST", SEARCH, params={"page_size": 101}, body={})


async def test_inventory_search(sandbox: Sandbox, tiktok_client: TikTokClient) -> None:
    auth = await sandbox.authorize(tiktok_client)
    data = await call(tiktok_client, auth, "POST", INVENTORY_SEARCH, body={"product_ids": [BLACK, BLUE]})
    assert [i["product_id"] for i in data["inventory"]] == [BLACK, BLUE]
    black = data["inventory"][0]["skus"][0]
    assert black["total_available_quantity"] == 160 and black["total_committed_quantity"] == 0
    assert black["warehouse_inventory"] == [
        {"warehouse_id": LA, "available_quantity": 100, "committed_quantity": 0},
        {"warehouse_id": NJ, "available_quantity": 60, "committed_quantity": 0}]
    by_sku = await call(tiktok_client, auth, "POST", INVENTORY_SEARCH, body={"sku_ids": [f"{BLUE}01"]})
    assert [(i["product_id"], [k["id"] for k in i["skus"]]) for i in by_sku["inventory"]] == [(BLUE, [f"{BLUE}01"])]
    await fails(12019120, tiktok_client, auth, "POST", INVENTORY_SEARCH, body={"product_ids": ["1"] * 101})
    await fails(12019015, tiktok_client, auth, "POST", INVENTORY_SEARCH, body={"sku_ids": ["1"] * 601})
    await fails(36009004, tiktok_client, auth, "POST", INVENTORY_SEARCH, body={})


async def test_update_inventory(sandbox: Sandbox, tiktok_client: TikTokClient) -> None:
    auth = await sandbox.authorize(tiktok_client)
    data = await call(tiktok_client, auth, "POST", update(RED),
                      body={"skus": [{"id": f"{RED}00", "inventory": [{"warehouse_id": LA, "quantity": 42}]}]})
    assert data == {}
    after = await call(tiktok_client, auth, "POST", INVENTORY_SEARCH, body={"product_ids": [RED]})
    assert after["inventory"][0]["skus"][0]["total_available_quantity"] == 42
    journal = (await sandbox.control("GET", "/sandbox/inventory/updates")).json()
    assert [(j["shop_id"], j["product_id"], j["skus"]) for j in journal] == [
        (US_SHOP, RED, [{"id": f"{RED}00", "inventory": [{"warehouse_id": LA, "quantity": 42}]}])]
    rows = (await sandbox.control("GET", f"/sandbox/inventory?shop_id={US_SHOP}")).json()[US_SHOP]
    assert next(r for r in rows if r["sku_id"] == f"{RED}00")["inventory"] == {LA: 42}
    assert pushes(sandbox, 27) == []  # 42 is not low
    # top-level refusals: nothing applied
    for bad in (-1, 100_000, "5", 1.5):
        await fails(12052055, tiktok_client, auth, "POST", update(RED),
                    body={"skus": [{"id": f"{RED}00", "inventory": [{"warehouse_id": LA, "quantity": bad}]}]})
    await fails(12052556, tiktok_client, auth, "POST", update("1"),
                body={"skus": [{"id": "1", "inventory": [{"warehouse_id": LA, "quantity": 1}]}]})
    await fails(12052050, tiktok_client, auth, "POST", update(RED),
                body={"skus": [{"id": f"{RED}00", "inventory": []}] * 101})
    assert len((await sandbox.control("GET", "/sandbox/inventory/updates")).json()) == 1


async def test_update_inventory_partial_failures(sandbox: Sandbox, tiktok_client: TikTokClient) -> None:
    auth = await sandbox.authorize(tiktok_client)
    # the BLACK SKU lives in LA and NJ: listing only LA fails for that SKU, with code 0 at the top
    data = await call(tiktok_client, auth, "POST", update(BLACK),
                      body={"skus": [{"id": f"{BLACK}00", "inventory": [{"warehouse_id": LA, "quantity": 7}]}]})
    [error] = data["errors"]
    assert (error["code"], error["message"], error["detail"]["sku_id"]) == (12052990, "Check failed", f"{BLACK}00")
    assert [(e["warehouse_id"], e["code"]) for e in error["detail"]["extra_errors"]] == [(NJ, 12052037)]
    rows = (await sandbox.control("GET", "/sandbox/inventory")).json()[US_SHOP]
    assert next(r for r in rows if r["sku_id"] == f"{BLACK}00")["inventory"] == {LA: 100, NJ: 60}
    # one SKU applies, the others fail: unknown SKU, unknown warehouse, an unassigned warehouse of the shop
    data = await call(tiktok_client, auth, "POST", update(BLUE), body={"skus": [
        {"id": f"{BLUE}00", "inventory": [{"warehouse_id": LA, "quantity": 9}]},
        {"id": f"{RED}00", "inventory": [{"warehouse_id": LA, "quantity": 9}]},
        {"id": f"{BLUE}01", "inventory": [{"warehouse_id": LA, "quantity": 9}, {"warehouse_id": "42", "quantity": 9},
                                          {"warehouse_id": SHARED_A, "quantity": 9}]}]})
    assert [(e["detail"]["sku_id"], [(x["warehouse_id"], x["code"]) for x in e["detail"]["extra_errors"]])
            for e in data["errors"]] == [(f"{RED}00", [("", 12052556)]),
                                         (f"{BLUE}01", [("42", 12052097), (SHARED_A, 12052037)])]
    stock = await call(tiktok_client, auth, "POST", INVENTORY_SEARCH, body={"product_ids": [BLUE]})
    assert [k["total_available_quantity"] for k in stock["inventory"][0]["skus"]] == [9, 100]
    # a frozen product takes no updates
    await sandbox.control("POST", f"/sandbox/products/{BLUE}", {"status": "FREEZE"})
    await fails(12052901, tiktok_client, auth, "POST", update(BLUE),
                body={"skus": [{"id": f"{BLUE}00", "inventory": [{"warehouse_id": LA, "quantity": 9}]}]})


async def test_low_stock_pushes_inventory_status_change(sandbox: Sandbox, tiktok_client: TikTokClient) -> None:
    auth = await sandbox.authorize(tiktok_client)
    await call(tiktok_client, auth, "POST", update(BLACK), body={"skus": [
        {"id": f"{BLACK}00", "inventory": [{"warehouse_id": LA, "quantity": 3}, {"warehouse_id": NJ, "quantity": 0}]}]})
    [push] = pushes(sandbox, 27)
    assert push["shop_id"] == US_SHOP
    assert push["data"] | {"update_time": 0} == {
        "product_id": BLACK, "sku_id": f"{BLACK}00",
        "trigger_reason": {"alert_type": "REALTIME", "low_stock_threshold": 5},
        "current_inventory_status": "LOW_STOCK",
        "inventory_distribution": {"total_quantity": 3, "available_quantity": 3, "creator_reserved_quantity": 0,
                                   "campaign_reserved_quantity": 0, "committed_quantity": 0},
        "update_time": 0}
    # the seller sets it to zero on TikTok
    row = await sandbox.control("POST", "/sandbox/inventory",
                                {"shop_id": US_SHOP, "sku_id": f"{BLACK}00", "warehouse_id": LA, "quantity": 0})
    assert row.json()["inventory"] == {LA: 0, NJ: 0}
    assert pushes(sandbox, 27)[-1]["data"]["current_inventory_status"] == "OUT_OF_STOCK"
    # plenty, but a webhook asked for
    await sandbox.control("POST", "/sandbox/inventory", {"shop_id": US_SHOP, "sku_id": f"{BLACK}00",
                                                         "warehouse_id": LA, "quantity": 50, "webhook": True})
    assert pushes(sandbox, 27)[-1]["data"]["current_inventory_status"] == "SUFFICIENT_STOCK"
    await sandbox.control("POST", "/sandbox/inventory", {"shop_id": US_SHOP, "sku_id": f"{BLACK}00",
                                                         "warehouse_id": LA, "quantity": 40})
    assert len(pushes(sandbox, 27)) == 3
    bad = await sandbox.control("POST", "/sandbox/inventory", {"shop_id": US_SHOP, "sku_id": f"{BLACK}00",
                                                               "warehouse_id": KL, "quantity": 1})
    assert bad.status_code == 400 and bad.json()["error"] == "bad_request"


async def test_control_products_push_product_webhooks(sandbox: Sandbox, tiktok_client: TikTokClient) -> None:
    auth = await sandbox.authorize(tiktok_client, MY_SHOP)
    created = await sandbox.control("POST", "/sandbox/products", {
        "shop_id": MY_SHOP, "title": "Batik shirt", "skus": [{"seller_sku": "BATIK-1", "price": "49.00",
                                                              "inventory": {KL: 12}}]})
    assert created.status_code == 201
    product = created.json()
    assert product["status"] == "ACTIVATE" and product["skus"][0]["inventory"] == [{"warehouse_id": KL, "quantity": 12}]
    assert pushes(sandbox, 16)[-1]["data"] == {"product_id": int(product["id"]), "update_time": product["update_time"]}
    found = await call(tiktok_client, auth, "POST", SEARCH, params={"page_size": 5},
                       body={"seller_skus": ["BATIK-1"]})
    assert [p["id"] for p in found["products"]] == [product["id"]]
    sku_id = product["skus"][0]["id"]
    edited = await sandbox.control("POST", f"/sandbox/products/{product['id']}", {
        "status": "SELLER_DEACTIVATED", "skus": [{"sku_id": sku_id, "seller_sku": "BATIK-2"}]})
    assert edited.json()["status"] == "SELLER_DEACTIVATED"
    assert pushes(sandbox, 5)[-1]["data"] | {"update_time": 0} == {  # an audit event; the id a number (DOCS)
        "product_id": int(product["id"]), "status": "PRODUCT_STATUS_CHANGED", "suspended_reason": "", "update_time": 0}
    assert pushes(sandbox, 15)[-1]["data"]["product_id"] == product["id"]  # its changed_fields: an assumption
    assert (await call(tiktok_client, auth, "POST", SEARCH, params={"page_size": 5},
                       body={"seller_skus": ["BATIK-2"], "status": "SELLER_DEACTIVATED"}))["total_count"] == 1
    assert (await sandbox.control("POST", "/sandbox/products", {"shop_id": MY_SHOP, "skus": [
        {"seller_sku": "X", "inventory": {LA: 1}}]})).status_code == 400
    assert (await sandbox.control("POST", "/sandbox/products/1", {"status": "ACTIVATE"})).status_code == 404
    assert (await sandbox.control("POST", f"/sandbox/products/{product['id']}",
                                  {"status": "GONE"})).status_code == 400


async def test_get_product_shows_the_status_webhook_5_only_hints_at(sandbox: Sandbox,
                                                                     tiktok_client: TikTokClient) -> None:
    auth = await sandbox.authorize(tiktok_client, MY_SHOP)
    created = (await sandbox.control("POST", "/sandbox/products", {
        "shop_id": MY_SHOP, "status": "PENDING", "skus": [{"seller_sku": "SONGKET-1", "inventory": {KL: 4}}]})).json()
    product = await tiktok_client.get_product(auth, created["id"])
    assert (product["id"], product["status"], product["update_time"]) == (created["id"], "PENDING",
                                                                         created["update_time"])
    assert [(k["seller_sku"], k["inventory"]) for k in product["skus"]] == [
        ("SONGKET-1", [{"warehouse_id": KL, "quantity": 4}])]
    seen = []
    for status in ("ACTIVATE", "SELLER_DEACTIVATED", "ACTIVATE", "FAILED"):
        await sandbox.control("POST", f"/sandbox/products/{created['id']}", {"status": status})
        data = pushes(sandbox, 5)[-1]["data"]
        assert data["product_id"] == int(created["id"])
        assert (await tiktok_client.get_product(auth, created["id"]))["update_time"] == data["update_time"]
        seen.append(data["status"])
    # the first activation of a product created in review: which audit event TikTok sends is assumed (docs/sandbox.md)
    assert seen[0] in {"PRODUCT_FIRST_PASS_REVIEW", "PRODUCT_STATUS_CHANGED"}
    assert seen[1:] == ["PRODUCT_STATUS_CHANGED", "PRODUCT_STATUS_CHANGED", "PRODUCT_AUDIT_FAILURE"]
    assert (await tiktok_client.get_product(auth, created["id"]))["status"] == "FAILED"
    with pytest.raises(TikTokError):  # another shop's product (the exact code is an assumption)
        await tiktok_client.get_product(auth, RED)


async def test_an_unknown_path_is_invalid_path_not_not_found(sandbox: Sandbox, tiktok_client: TikTokClient) -> None:
    from shared.tiktok.errors import InvalidPath

    auth = await sandbox.authorize(tiktok_client)
    error = await fails(36009009, tiktok_client, auth, "GET", "/order/202309/ordrs")
    assert isinstance(error, InvalidPath)

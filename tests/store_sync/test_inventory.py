"""OMS quantities reach every mapped TikTok SKU, in the linked warehouse only, coalesced, and corrected."""

from __future__ import annotations

from typing import Any

from tests.store_sync.conftest import KL, LA, MY_SHOP, NJ, SHARED_A, SHARED_B, US_SHOP, SyncHarness


def inventory_results(results: list[dict[str, Any]], code: str) -> list[dict[str, Any]]:
    return [r for r in results if r["kind"] == "inventory" and r["product_code"] == code]


async def updates_of(sync: SyncHarness, product_id: str) -> list[dict[str, Any]]:
    return [u for u in await sync.sandbox_json("GET", "/sandbox/inventory/updates") if u["product_id"] == product_id]


async def test_one_product_fans_out_to_two_stores(sync: SyncHarness) -> None:
    await sync.base.link("US store", "LA Warehouse", shop_id=US_SHOP)
    await sync.base.link("MY store", "KL Warehouse", shop_id=MY_SHOP)
    await sync.map((US_SHOP, "RED-S", "TEE-RED-S"), (MY_SHOP, "RED-S-MY", "TEE-RED-S"))
    await sync.start()
    await sync.stock(("TEE-RED-S", 42))
    results = await sync.results(lambda rs: len(inventory_results(rs, "TEE-RED-S")) == 2)
    assert sorted((r["shop_id"], r["status"], r["quantity"]) for r in results) == [
        (US_SHOP, "applied", 42), (MY_SHOP, "applied", 42)]
    us, my = await sync.sku(US_SHOP, "RED-S"), await sync.sku(MY_SHOP, "RED-S-MY")
    assert us["inventory"] == {LA: 42} and my["inventory"] == {KL: 42}


async def test_a_hundred_updates_in_the_window_make_one_call_with_the_last_value(sync: SyncHarness) -> None:
    await sync.base.link("US store", "LA Warehouse", shop_id=US_SHOP)
    await sync.map((US_SHOP, "RED-S", "TEE-RED-S"))
    await sync.stock(*[("TEE-RED-S", n) for n in range(1, 100)], ("TEE-RED-S", 57))
    await sync.start()
    [result] = inventory_results(await sync.results(lambda rs: inventory_results(rs, "TEE-RED-S")), "TEE-RED-S")
    assert (result["status"], result["quantity"], result["changed"]) == ("applied", 57, True)
    sku = await sync.sku(US_SHOP, "RED-S")
    updates = await updates_of(sync, sku["product_id"])
    assert len(updates) == 1 and updates[0]["skus"][0]["inventory"] == [{"warehouse_id": LA, "quantity": 57}]


async def test_other_warehouses_keep_their_quantities(sync: SyncHarness) -> None:
    await sync.base.link("US store", "LA Warehouse", shop_id=US_SHOP)
    await sync.map((US_SHOP, "BLACK-S", "TEE-BLACK"))
    await sync.start()
    await sync.stock(("TEE-BLACK", 7))
    [result] = inventory_results(await sync.results(lambda rs: inventory_results(rs, "TEE-BLACK")), "TEE-BLACK")
    assert (result["status"], result["warehouse_id"], result["tiktok_quantity_before"]) == ("applied", LA, 100)
    assert (await sync.sku(US_SHOP, "BLACK-S"))["inventory"] == {LA: 7, NJ: 60}


async def test_the_buffer_is_held_back_and_never_goes_below_zero(sync: SyncHarness) -> None:
    await sync.base.link("US store", "LA Warehouse", shop_id=US_SHOP, inventory_buffer=5)
    await sync.map((US_SHOP, "RED-S", "TEE-RED-S"), (US_SHOP, "BLUE-S", "TEE-BLUE-S"))
    await sync.start()
    await sync.stock(("TEE-RED-S", 12), ("TEE-BLUE-S", 3))
    results = await sync.results(lambda rs: len([r for r in rs if r["kind"] == "inventory"]) == 2)
    assert sorted((r["seller_sku"], r["oms_available"], r["quantity"]) for r in results) == [
        ("BLUE-S", 3, 0), ("RED-S", 12, 7)]
    assert (await sync.sku(US_SHOP, "RED-S"))["inventory"] == {LA: 7}
    assert (await sync.sku(US_SHOP, "BLUE-S"))["inventory"] == {LA: 0}


async def test_unmapped_products_and_unlinked_warehouses_are_explained(sync: SyncHarness) -> None:
    await sync.base.link("US store", "LA Warehouse", shop_id=US_SHOP)
    await sync.map((US_SHOP, "WHITE-S", "TEE-WHITE"))
    await sync.start()
    await sync.stock(("NOT-MAPPED", 5), ("TEE-WHITE", 5))
    results = await sync.results(lambda rs: len(rs) == 2)
    by_code = {r["product_code"]: r for r in results}
    unmapped = by_code["NOT-MAPPED"]
    assert (unmapped["status"], unmapped["reason"]) == ("skipped", "inventory:unmapped_product")
    assert "shopsync mappings set" in by_code["NOT-MAPPED"]["detail"]
    white = by_code["TEE-WHITE"]
    assert (white["status"], white["reason"]) == ("skipped", "inventory:no_linked_warehouse")
    assert "LA Warehouse" in white["detail"]
    assert (await sync.sku(US_SHOP, "WHITE-S"))["inventory"] == {SHARED_A: 30, SHARED_B: 30}


async def test_an_sku_in_two_linked_warehouses_is_ambiguous_and_not_touched(sync: SyncHarness) -> None:
    await sync.base.link("US store", "Shared Name Warehouse", shop_id=US_SHOP)
    await sync.map((US_SHOP, "WHITE-S", "TEE-WHITE"))
    await sync.start()
    await sync.stock(("TEE-WHITE", 9))
    [result] = await sync.results(lambda rs: len(rs) == 1)
    assert (result["status"], result["reason"]) == ("skipped", "inventory:ambiguous_warehouse")
    assert "link the store with the name of the one warehouse" in result["detail"]
    assert (await sync.sku(US_SHOP, "WHITE-S"))["inventory"] == {SHARED_A: 30, SHARED_B: 30}


async def test_an_older_quantity_is_ignored(sync: SyncHarness) -> None:
    from shared.topics import OMS_INVENTORY

    await sync.base.link("US store", "LA Warehouse", shop_id=US_SHOP)
    await sync.map((US_SHOP, "RED-S", "TEE-RED-S"))
    await sync.publish(OMS_INVENTORY, [
        ("TEE-RED-S", b'{"product_code": "TEE-RED-S", "available": 20, "as_of": "2026-11-25T10:00:00Z"}'),
        ("TEE-RED-S", b'{"product_code": "TEE-RED-S", "available": 99, "as_of": "2026-11-25T09:00:00Z"}')])
    await sync.start()
    [result] = await sync.results(lambda rs: len(rs) == 1)
    assert result["quantity"] == 20 and (await sync.sku(US_SHOP, "RED-S"))["inventory"] == {LA: 20}


async def test_webhook_27_corrects_a_quantity_changed_on_tiktok(sync: SyncHarness) -> None:
    await sync.base.link("US store", "LA Warehouse", shop_id=US_SHOP)
    await sync.map((US_SHOP, "RED-S", "TEE-RED-S"))
    await sync.start()
    await sync.stock(("TEE-RED-S", 40))
    await sync.results(lambda rs: len(rs) == 1)
    sku = await sync.sku(US_SHOP, "RED-S")
    await sync.sandbox_json("POST", "/sandbox/inventory", {"shop_id": US_SHOP, "sku_id": sku["sku_id"],
                                                           "warehouse_id": LA, "quantity": 2})
    results = await sync.results(lambda rs: any(r.get("cause") == "inventory_webhook" for r in rs))
    fix = next(r for r in results if r.get("cause") == "inventory_webhook")
    assert (fix["status"], fix["tiktok_quantity_before"], fix["quantity"]) == ("applied", 2, 40)
    assert (await sync.sku(US_SHOP, "RED-S"))["inventory"] == {LA: 40}


async def test_a_product_created_on_tiktok_is_picked_up_from_its_webhook(sync: SyncHarness) -> None:
    await sync.base.link("US store", "LA Warehouse", shop_id=US_SHOP)
    await sync.map((US_SHOP, "NEW-SKU", "NEW-PRODUCT"))
    await sync.start()
    await sync.stock(("NEW-PRODUCT", 9))
    [first] = await sync.results(lambda rs: len(rs) == 1)
    assert first["reason"] == "inventory:seller_sku_not_on_tiktok"
    await sync.sandbox_json("POST", "/sandbox/products", {"shop_id": US_SHOP, "title": "New tee", "skus": [
        {"seller_sku": "NEW-SKU", "inventory": {LA: 0}}]})
    results = await sync.results(lambda rs: any(r["status"] == "applied" for r in rs))
    applied = next(r for r in results if r["status"] == "applied")
    assert (applied["cause"], applied["quantity"]) == ("catalog_change", 9)
    assert (await sync.sku(US_SHOP, "NEW-SKU"))["inventory"] == {LA: 9}


async def test_a_new_mapping_pushes_the_last_known_quantity(sync: SyncHarness) -> None:
    await sync.base.link("US store", "LA Warehouse", shop_id=US_SHOP)
    await sync.start()
    await sync.stock(("TEE-GREEN", 11))
    await sync.results(lambda rs: len(rs) == 1)  # unmapped
    await sync.map((US_SHOP, "GREEN-M", "TEE-GREEN"))
    results = await sync.results(lambda rs: len(rs) == 2)
    assert (results[-1]["status"], results[-1]["cause"], results[-1]["quantity"]) == ("applied", "mapping_change", 11)
    assert (await sync.sku(US_SHOP, "GREEN-M"))["inventory"] == {LA: 11}

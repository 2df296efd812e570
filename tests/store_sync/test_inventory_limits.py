"""Update Inventory's limits over real HTTP: quantities clamped to 99,999, a refused 0, product statuses."""

from __future__ import annotations

from typing import Any

from tests.store_sync.conftest import LA, US_SHOP, SyncHarness

UPDATE_CALL = "/inventory/update"


def inventory_results(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in results if r["kind"] == "inventory"]


async def update_calls(sync: SyncHarness, product_id: str) -> int:
    calls = await sync.sandbox_json("GET", "/sandbox/calls")
    return sum(1 for c in calls if c["path"] == f"/product/202309/products/{product_id}{UPDATE_CALL}")


async def test_a_quantity_above_99999_is_clamped_and_the_result_says_so(sync: SyncHarness) -> None:
    await sync.base.link("US store", "LA Warehouse", shop_id=US_SHOP)
    await sync.map((US_SHOP, "RED-S", "TEE-RED-S"))
    await sync.start()
    await sync.stock(("TEE-RED-S", 150_000))
    [result] = inventory_results(await sync.results(lambda rs: len(inventory_results(rs)) == 1))
    assert (result["status"], result["quantity"], result["clamped"]) == ("applied", 99_999, True)
    assert "150,000" in result["detail"]
    assert (await sync.sku(US_SHOP, "RED-S"))["inventory"] == {LA: 99_999}


async def test_a_refused_zero_fails_with_a_fix_and_the_other_skus_still_apply(sync: SyncHarness) -> None:
    await sync.sandbox_json("POST", "/sandbox/config", {"refuse_zero_quantity": True})
    await sync.base.link("US store", "LA Warehouse", shop_id=US_SHOP)
    await sync.map((US_SHOP, "BLUE-S", "TEE-BLUE-S"), (US_SHOP, "BLUE-M", "TEE-BLUE-M"))
    await sync.start()
    await sync.stock(("TEE-BLUE-S", 0), ("TEE-BLUE-M", 8))
    results = inventory_results(await sync.results(lambda rs: len(inventory_results(rs)) == 2))
    by_sku = {r["seller_sku"]: r for r in results}
    zero = by_sku["BLUE-S"]
    assert (zero["status"], zero["reason"], zero["tiktok_code"], zero["attempts"]) == (
        "failed", "inventory:zero_not_allowed", 12052055, 1)
    assert "deactivate the SKU" in zero["detail"] and "--inventory-buffer" in zero["detail"]
    assert (by_sku["BLUE-M"]["status"], by_sku["BLUE-M"]["quantity"]) == ("applied", 8)
    assert (await sync.sku(US_SHOP, "BLUE-S"))["inventory"] == {LA: 100}
    assert (await sync.sku(US_SHOP, "BLUE-M"))["inventory"] == {LA: 8}
    # once the switch is off (TikTok taking 0), the same quantity goes through
    await sync.sandbox_json("POST", "/sandbox/config", {"refuse_zero_quantity": False})
    await sync.stock(("TEE-BLUE-S", 0))
    results = inventory_results(await sync.results(lambda rs: len(inventory_results(rs)) == 3))
    assert (results[-1]["status"], results[-1]["quantity"]) == ("applied", 0)
    assert (await sync.sku(US_SHOP, "BLUE-S"))["inventory"] == {LA: 0}


async def test_a_product_tiktok_refuses_by_status_is_named_and_then_left_alone(sync: SyncHarness) -> None:
    green = await sync.sku(US_SHOP, "GREEN-S")
    black = await sync.sku(US_SHOP, "BLACK-S")
    await sync.sandbox_json("POST", f"/sandbox/products/{green['product_id']}", {"status": "SELLER_DEACTIVATED"})
    await sync.sandbox_json("POST", f"/sandbox/products/{black['product_id']}", {"status": "FREEZE"})
    await sync.base.link("US store", "LA Warehouse", shop_id=US_SHOP)
    await sync.map((US_SHOP, "GREEN-S", "TEE-GREEN-S"), (US_SHOP, "BLACK-S", "TEE-BLACK"))
    await sync.start()
    await sync.stock(("TEE-GREEN-S", 12), ("TEE-BLACK", 12))
    results = inventory_results(await sync.results(lambda rs: len(inventory_results(rs)) == 2))
    by_sku = {r["seller_sku"]: r for r in results}
    tried = by_sku["GREEN-S"]
    assert (tried["status"], tried["reason"], tried["tiktok_code"]) == (
        "failed", "inventory:product_status_not_allowed", 12052901)
    assert "SELLER_DEACTIVATED" in tried["detail"]
    frozen = by_sku["BLACK-S"]
    assert (frozen["status"], frozen["reason"]) == ("skipped", "inventory:product_status_not_allowed")
    assert "FREEZE" in frozen["detail"] and await update_calls(sync, black["product_id"]) == 0
    # TikTok said no for SELLER_DEACTIVATED: the next quantity is not sent again
    await sync.stock(("TEE-GREEN-S", 13))
    results = inventory_results(await sync.results(lambda rs: len(inventory_results(rs)) == 3))
    assert (results[-1]["status"], results[-1]["reason"]) == ("skipped", "inventory:product_status_not_allowed")
    assert await update_calls(sync, green["product_id"]) == 1
    assert (await sync.sku(US_SHOP, "GREEN-S"))["inventory"] == {LA: 100}

"""Product webhooks over real HTTP and the real broker: type 5 re-reads the product (Get Product gives the status),
and a late webhook is counted stale and makes no call."""

from __future__ import annotations

from typing import Any

import orjson

from shared.topics import TIKTOK_WEBHOOKS
from tests.store_sync.conftest import US_SHOP, SyncHarness
from tests.waiting import eventually

PRODUCT_PATH = "/product/202309/products/{}"
AUDIT_EVENTS = {"PRODUCT_FIRST_PASS_REVIEW", "PRODUCT_STATUS_CHANGED", "PRODUCT_AUDIT_FAILURE"}


def inventory_results(results: list[dict[str, Any]], seller_sku: str, cause: str | None = None
                      ) -> list[dict[str, Any]]:
    return [r for r in results if r["kind"] == "inventory" and r["seller_sku"] == seller_sku
            and (cause is None or r.get("cause") == cause)]


def catalog_status(sync: SyncHarness, seller_sku: str) -> str | None:
    inventory = sync.service.inventory if sync.service else None
    entry = inventory.catalog.get(US_SHOP, seller_sku) if inventory else None
    return entry.skus[0].product_status if entry and entry.skus else None


def pushes(sync: SyncHarness, kind: int) -> list[Any]:
    """The sandbox's pushes of one webhook type (their exact bodies)."""
    return [p for p in sync.base.sandbox.app.state.pusher.log if p.type == kind]  # type: ignore[attr-defined]  # test-only app state


def data(body: bytes) -> dict[str, Any]:
    return dict(orjson.loads(body)["data"])


async def test_a_product_deactivated_on_tiktok_takes_its_status_from_get_product(sync: SyncHarness) -> None:
    green, black = await sync.sku(US_SHOP, "GREEN-S"), await sync.sku(US_SHOP, "BLACK-S")
    await sync.base.link("US store", "LA Warehouse", shop_id=US_SHOP)
    await sync.map((US_SHOP, "GREEN-S", "TEE-GREEN-S"), (US_SHOP, "BLACK-S", "TEE-BLACK"))
    await sync.start()
    await sync.stock(("TEE-GREEN-S", 12), ("TEE-BLACK", 12))
    await sync.results(lambda rs: len(inventory_results(rs, "GREEN-S") + inventory_results(rs, "BLACK-S")) == 2)
    await sync.sandbox_json("POST", f"/sandbox/products/{green['product_id']}", {"status": "SELLER_DEACTIVATED"})
    await sync.sandbox_json("POST", f"/sandbox/products/{black['product_id']}", {"status": "FREEZE"})
    # the webhooks say only that something happened...
    assert {data(p.body)["status"] for p in pushes(sync, 5)} == {"PRODUCT_STATUS_CHANGED"}
    # ...the re-read product says what: the catalog holds TikTok's status, and each SKU is re-checked with it
    results = await sync.results(lambda rs: inventory_results(rs, "GREEN-S", "catalog_change")
                                 and inventory_results(rs, "BLACK-S", "catalog_change"))
    [frozen] = inventory_results(results, "BLACK-S", "catalog_change")
    assert (frozen["status"], frozen["reason"], frozen["product_status"]) == (
        "skipped", "inventory:product_status_not_allowed", "FREEZE")
    [deactivated] = inventory_results(results, "GREEN-S", "catalog_change")
    assert deactivated["product_status"] == "SELLER_DEACTIVATED"  # TikTok already shows 12: no call needed
    assert (catalog_status(sync, "GREEN-S"), catalog_status(sync, "BLACK-S")) == ("SELLER_DEACTIVATED", "FREEZE")
    for product_id in (green["product_id"], black["product_id"]):
        assert len(await sync.calls(PRODUCT_PATH.format(product_id))) == 1
    # the next quantity: tried and refused for SELLER_DEACTIVATED, never sent for FREEZE
    await sync.stock(("TEE-GREEN-S", 13), ("TEE-BLACK", 13))
    results = await sync.results(lambda rs: len(inventory_results(rs, "GREEN-S")) == 3
                                 and len(inventory_results(rs, "BLACK-S")) == 3)
    tried, skipped = inventory_results(results, "GREEN-S")[-1], inventory_results(results, "BLACK-S")[-1]
    assert (tried["status"], tried["reason"], tried["tiktok_code"]) == (
        "failed", "inventory:product_status_not_allowed", 12052901)
    assert "SELLER_DEACTIVATED" in tried["detail"]
    assert (skipped["status"], skipped["reason"]) == ("skipped", "inventory:product_status_not_allowed")
    assert len(await sync.calls(f"/product/202309/products/{black['product_id']}/inventory/update")) == 1
    assert not any(r.get("product_status") in AUDIT_EVENTS for r in results)


async def test_a_late_product_webhook_is_counted_stale_and_makes_no_call(sync: SyncHarness) -> None:
    green = await sync.sku(US_SHOP, "GREEN-S")
    product_path = PRODUCT_PATH.format(green["product_id"])
    await sync.base.link("US store", "LA Warehouse", shop_id=US_SHOP)
    await sync.map((US_SHOP, "GREEN-S", "TEE-GREEN-S"))
    await sync.start()
    await sync.stock(("TEE-GREEN-S", 12))
    await sync.results(lambda rs: inventory_results(rs, "GREEN-S"))
    await sync.sandbox_json("POST", f"/sandbox/products/{green['product_id']}", {"status": "SELLER_DEACTIVATED"})
    await eventually(lambda: catalog_status(sync, "GREEN-S") == "SELLER_DEACTIVATED")
    await sync.sandbox_json("POST", f"/sandbox/products/{green['product_id']}", {"status": "ACTIVATE"})
    await eventually(lambda: catalog_status(sync, "GREEN-S") == "ACTIVATE")
    assert len(await sync.calls(product_path)) == 2
    # TikTok's retry of the first push lands now, after the newer one
    first, second = pushes(sync, 5)
    assert data(first.body)["update_time"] < data(second.body)["update_time"]
    await sync.publish(TIKTOK_WEBHOOKS, [(f"{US_SHOP}:{green['product_id']}", first.body)])
    assert sync.service is not None
    registry = sync.service.registry
    await eventually(lambda: registry.get_sample_value("webhooks_stale_total", {"type": "5"}) == 1.0)
    assert len(await sync.calls(product_path)) == 2 and catalog_status(sync, "GREEN-S") == "ACTIVATE"


"""Shops over Search Products' 10,000-result cap (12052180): walked by mapped seller SKUs or update_time windows."""

from __future__ import annotations

from typing import Any

import pytest

from services.store_sync.catalog_walk import SEARCH_CAP, choose_strategy, walk_catalog
from shared.tiktok.client import TikTokClient
from shared.tiktok.errors import TikTokError
from tests.sandbox import US_SHOP, Sandbox
from tests.store_sync.conftest import LA, SyncHarness

BULK = 10_050  # just over the cap: fast to create and to walk


@pytest.mark.parametrize(("total", "mapped", "strategy"), [
    (6, 0, "all"), (10_000, 5_000, "all"), (10_001, 2, "seller_skus"), (50_000, 3_000, "seller_skus"),
    (50_000, 6_000, "windows"), (50_000, 0, "seller_skus"), (200_000, 100_000, "windows")])
def test_the_cheaper_walk_is_chosen(total: int, mapped: int, strategy: str) -> None:
    assert choose_strategy(total, mapped) == strategy


async def bulk(sandbox: Sandbox, count: int = BULK) -> None:
    answer = await sandbox.control("POST", "/sandbox/products/bulk", {"shop_id": US_SHOP, "count": count})
    assert answer.status_code == 201, answer.text


async def test_the_sandbox_refuses_to_page_past_10000_results(sandbox: Sandbox, tiktok_client: TikTokClient) -> None:
    await bulk(sandbox)
    auth = await sandbox.authorize(tiktok_client)
    _, _, total = await tiktok_client.search_products_page(auth, {}, page_size=100)
    assert total == BULK + 6
    with pytest.raises(TikTokError) as info:
        await tiktok_client.search_products_page(auth, {}, page_size=100, page_token=str(SEARCH_CAP))
    assert info.value.code == 12052180


async def test_update_time_windows_read_every_product_of_a_large_shop(sandbox: Sandbox,
                                                                      tiktok_client: TikTokClient) -> None:
    await bulk(sandbox)
    auth = await sandbox.authorize(tiktok_client)

    async def page(body: dict[str, Any], size: int, token: str) -> tuple[list[dict[str, Any]], str, int]:
        return await tiktok_client.search_products_page(auth, body, page_size=size, page_token=token)

    walk = await walk_catalog(page, [f"BULK-{n:06d}" for n in range(1, 2_000)], now=int(sandbox.world.clock()))
    assert walk.strategy == "windows" and not walk.partial
    assert len({p["id"] for p in walk.products}) == BULK + 6
    assert {"RED-S", "BULK-000001", f"BULK-{BULK:06d}"} <= {k["seller_sku"] for p in walk.products for k in p["skus"]}


async def test_a_shop_over_the_cap_syncs_its_mapped_skus(sync: SyncHarness) -> None:
    await bulk(sync.base.sandbox)
    await sync.base.link("US store", "LA Warehouse", shop_id=US_SHOP)
    await sync.map((US_SHOP, f"BULK-{BULK:06d}", "BULK-P"), (US_SHOP, "RED-S", "TEE-RED-S"))
    await sync.start()
    await sync.stock(("BULK-P", 31), ("TEE-RED-S", 32))
    results = await sync.results(lambda rs: len(rs) == 2)
    assert sorted((r["seller_sku"], r["status"], r["quantity"]) for r in results) == [
        (f"BULK-{BULK:06d}", "applied", 31), ("RED-S", "applied", 32)]
    # a SKU mapped later is read when it is first pushed
    await sync.map((US_SHOP, "BULK-000007", "BULK-Q"))
    await sync.stock(("BULK-Q", 33))
    results = await sync.results(lambda rs: any(r["product_code"] == "BULK-Q" and r["status"] == "applied"
                                                for r in rs))
    late = next(r for r in results if r["product_code"] == "BULK-Q" and r["status"] == "applied")
    assert late["quantity"] == 33
    assert (await sync.sku(US_SHOP, "BULK-000007"))["inventory"] == {LA: 33}

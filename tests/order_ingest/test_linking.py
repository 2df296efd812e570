"""Linking a store through the real OAuth callback."""

from __future__ import annotations

import html
import re
import time

import httpx

from shared.stores.linking import new_pending_link
from shared.stores.model import LINKED
from tests.ingest_harness import Harness, write_store
from tests.sandbox import MY_SHOP, US_SHOP


async def test_link_resolves_a_name_shared_by_two_sales_warehouses(harness: Harness) -> None:
    page = await harness.link("Main store", "  shared NAME warehouse ")
    assert page.status_code == 200, page.text
    assert "Sandbox US Store" in page.text and "Shared Name Warehouse" in page.text
    store = (await harness.stores()).stores["7494049642642441621"]
    assert store.status == LINKED and store.warehouse_ids == ["7000000000000000004", "7000000000000000005"]
    assert store.access_token_enc and "TTP_" not in store.access_token_enc


async def test_unknown_warehouse_fails_naming_it_and_listing_the_names(harness: Harness) -> None:
    page = await harness.link("Main store", "Dallas Warehouse")
    assert page.status_code == 400
    assert "Dallas Warehouse" in page.text and "LA Warehouse" in page.text and "NJ Warehouse" in page.text
    table = await harness.stores()
    assert table.stores == {} and table.pending == {}  # nothing linked, the state is used up


async def test_blank_warehouse_links_all_warehouses(harness: Harness) -> None:
    page = await harness.link("Malaysia", "", shop_id=MY_SHOP)
    assert page.status_code == 200 and "all warehouses" in page.text
    assert (await harness.stores()).stores[MY_SHOP].warehouse_ids == []


async def test_used_unknown_and_expired_states_are_refused(harness: Harness) -> None:
    async with httpx.AsyncClient(base_url=harness.gateway_url) as http:
        unknown = await http.get("/oauth/tiktok/callback", params={"code": "c", "state": "nope"})
        assert unknown.status_code == 400 and "unknown or was already used" in unknown.text
        record, _ = new_pending_link(harness.settings, "Old", "", now=time.time() - 3600)
        await write_store(harness.settings, record)
        expired = await http.get("/oauth/tiktok/callback", params={"code": "c", "state": record.state})
        assert expired.status_code == 400 and "expired" in expired.text
        again = await http.get("/oauth/tiktok/callback", params={"code": "c", "state": record.state})
        assert again.status_code == 400 and "already used" in again.text


async def test_auth_denied_shows_a_clear_page(harness: Harness) -> None:
    await harness.sandbox.control("POST", "/sandbox/config", {"deny_authorization": True})
    page = await harness.link("Main store", "")
    assert page.status_code == 403 and "declined" in page.text
    assert (await harness.stores()).stores == {}


async def cross_border_seller(harness: Harness) -> str:
    """A second shop (GB) of the US store's seller: one authorization now covers both."""
    answer = await harness.sandbox.control("POST", "/sandbox/shops", {
        "name": "Sandbox GB Store", "region": "GB", "same_seller_as": US_SHOP})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def test_an_authorization_covering_several_shops_asks_which_one(harness: Harness) -> None:
    gb_shop = await cross_border_seller(harness)
    page = await harness.link("Europe", "", shop_id=US_SHOP)
    assert page.status_code == 200 and "Choose the shop to link" in page.text
    assert "Sandbox US Store" in page.text and "Sandbox GB Store" in page.text
    assert (await harness.stores()).stores == {}  # nothing linked before the seller picks
    links = dict(re.findall(r"href='\?([^']*shop_id=(\d+))'", page.text)[i][::-1] for i in range(2))
    async with httpx.AsyncClient(base_url=harness.gateway_url) as http:
        chosen = await http.get("/oauth/tiktok/callback?" + html.unescape(links[gb_shop]))
        assert chosen.status_code == 200 and "Sandbox GB Store" in chosen.text, chosen.text
        again = await http.get("/oauth/tiktok/callback?" + html.unescape(links[US_SHOP]))
        assert again.status_code == 400 and "already used" in again.text
    table = await harness.stores()
    assert list(table.stores) == [gb_shop] and table.pending == {}
    store = table.stores[gb_shop]
    assert (store.status, store.region, store.nickname, store.warehouse_ids) == (LINKED, "GB", "Europe", [])
    assert store.access_token_enc and "TTP_" not in store.access_token_enc


async def test_a_region_named_up_front_links_that_shop_or_fails_listing_the_shops(harness: Harness) -> None:
    gb_shop = await cross_border_seller(harness)
    page = await harness.link("UK", "GB Warehouse", shop_id=US_SHOP, region="gb")
    assert page.status_code == 200 and "is linked" in page.text, page.text
    assert list((await harness.stores()).stores) == [gb_shop]
    wrong = await harness.link("France", "", shop_id=US_SHOP, region="FR")
    assert wrong.status_code == 400
    assert "region FR" in wrong.text and "Sandbox GB Store (GB)" in wrong.text and "Sandbox US Store (US)" in wrong.text
    assert list((await harness.stores()).stores) == [gb_shop]

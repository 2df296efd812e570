"""Linking a store through the real OAuth callback."""

from __future__ import annotations

import time

import httpx

from shared.stores.linking import new_pending_link
from shared.stores.model import LINKED
from tests.conftest import MY_SHOP
from tests.order_ingest.conftest import Harness, write_store


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

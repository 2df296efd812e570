"""Linking through the gateway's OAuth callback, which asks the stores owner and renders its answer: the sandbox
plays TikTok, the gateway serves the callback over real HTTP, the owner does the code exchange and writes."""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from services.webhook_gateway.oauth import oauth_routes
from services.webhook_gateway.wiring import build_app
from shared.envelope import header_map
from shared.kafka import read_to_end
from shared.settings import Settings
from shared.stores.commands import BeginLink, open_store_commands
from shared.stores.linking import new_pending_link
from shared.stores.model import LINKED
from shared.stores.table import StoreTable
from shared.tiktok.client import TikTokClient
from shared.tiktok.retry import RetryPolicy
from shared.topics import STORES
from tests.sandbox import US_SHOP, Sandbox
from tests.servers import serve_app
from tests.stores.owner import owner, running, with_key
from tests.waiting import eventually

CALLBACK = "/oauth/tiktok/callback"


@dataclass
class Linking:
    settings: Settings
    sandbox: Sandbox
    gateway_url: str

    def tiktok(self) -> TikTokClient:
        return TikTokClient(app_key=self.sandbox.config.app_key, app_secret=self.sandbox.config.app_secret,
                            api_base=self.sandbox.base_url, auth_base=self.sandbox.base_url,
                            retry=RetryPolicy(attempts=4))

    @contextlib.asynccontextmanager
    async def owner(self) -> AsyncIterator[None]:
        async with running(owner(self.settings, self.tiktok())):
            yield

    async def link(self, nickname: str = "Main store", warehouse: str = "LA Warehouse", **options: Any
                   ) -> httpx.Response:
        """The seller's journey: `stores link` (its pending link stored by the owner), consent, the callback."""
        record, url = new_pending_link(self.settings, nickname, warehouse, **options)
        async with open_store_commands(self.settings, "test") as commands:
            assert (await commands.request(BeginLink(record=record))).status == "applied"
        async with httpx.AsyncClient(timeout=30) as http:
            consent = await http.get(self.sandbox.base_url + "/open/authorize", params={
                "service_id": self.sandbox.config.service_id, "state": parse_qs(urlparse(url).query)["state"][0],
                "shop_id": US_SHOP})
            return await http.get(consent.headers["location"])

    async def stores(self) -> StoreTable:
        return await StoreTable().load(self.settings)


@pytest.fixture
async def linking(settings: Settings, sandbox: Sandbox) -> AsyncIterator[Linking]:
    s = with_key(settings).model_copy(update={
        "tiktok_service_id": sandbox.config.service_id, "tiktok_authorize_url": sandbox.base_url + "/open/authorize"})
    app = build_app(s, extra_routes=oauth_routes(s, answer_wait_s=2.0))
    async with serve_app(app) as url:
        await sandbox.control("POST", "/sandbox/config", {"redirect_url": url + CALLBACK})
        yield Linking(s, sandbox, url)


async def test_the_callback_links_through_the_owner_and_every_store_record_is_the_owners(linking: Linking) -> None:
    async with linking.owner():
        page = await linking.link()
    assert page.status_code == 200, page.text
    assert "is linked" in page.text and "Sandbox US Store" in page.text and "LA Warehouse" in page.text
    table = await linking.stores()
    store = table.stores[US_SHOP]
    assert (store.status, store.revision, table.pending) == (LINKED, 1, {})
    assert store.access_token_enc and "TTP_" not in store.access_token_enc
    records = [r async for r in read_to_end(linking.settings, STORES)]
    assert records and all("shopsync_command_id" in header_map(r.headers) for r in records)  # the owner wrote all


async def test_an_unknown_warehouse_fails_naming_the_names_and_uses_the_link_up(linking: Linking) -> None:
    async with linking.owner():
        page = await linking.link(warehouse="Dallas Warehouse")
    assert page.status_code == 400 and "warehouse not found" in page.text
    assert "Dallas Warehouse" in page.text and "LA Warehouse" in page.text and "NJ Warehouse" in page.text
    table = await linking.stores()
    assert table.stores == {} and table.pending == {}


async def test_an_authorization_covering_several_shops_asks_which_one_and_links_the_pick(linking: Linking) -> None:
    answer = await linking.sandbox.control("POST", "/sandbox/shops", {
        "name": "Sandbox GB Store", "region": "GB", "same_seller_as": US_SHOP})
    gb_shop = str(answer.json()["id"])
    async with linking.owner():
        page = await linking.link("Europe", "")
        assert page.status_code == 200 and "Choose the shop to link" in page.text, page.text
        assert (await linking.stores()).stores == {}  # nothing linked before the seller picks
        links = {shop: query for query, shop in re.findall(r"href='\?([^']*shop_id=(\d+))'", page.text)}
        async with httpx.AsyncClient(base_url=linking.gateway_url, timeout=30) as http:
            chosen = await http.get(f"{CALLBACK}?{html.unescape(links[gb_shop])}")
            assert chosen.status_code == 200 and "Sandbox GB Store" in chosen.text, chosen.text
            again = await http.get(f"{CALLBACK}?{html.unescape(links[US_SHOP])}")
            assert again.status_code == 400 and "already used" in again.text
    table = await linking.stores()
    assert list(table.stores) == [gb_shop] and table.pending == {}
    assert (table.stores[gb_shop].nickname, table.stores[gb_shop].region) == ("Europe", "GB")


async def test_a_callback_while_the_owner_is_down_says_so_and_the_store_is_linked_once_it_is_back(
        linking: Linking) -> None:
    async with linking.owner():  # `stores link` while the owner runs
        record, _ = new_pending_link(linking.settings, "Main store", "")
        async with open_store_commands(linking.settings, "test") as commands:
            await commands.request(BeginLink(record=record))
    async with httpx.AsyncClient(timeout=30) as http:
        consent = await http.get(linking.sandbox.base_url + "/open/authorize", params={
            "service_id": linking.sandbox.config.service_id, "state": record.state, "shop_id": US_SHOP})
        page = await http.get(consent.headers["location"])
    assert page.status_code == 202 and "Linking in progress" in page.text and "stores list" in page.text
    assert US_SHOP not in (await linking.stores()).stores
    async with linking.owner():  # the command waited on the topic
        async def linked() -> bool:
            store = (await linking.stores()).stores.get(US_SHOP)
            return store is not None and store.status == LINKED
        await eventually(linked, within=30, what="the store linked once the owner is back")

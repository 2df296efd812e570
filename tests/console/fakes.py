"""Fakes for the console's ports, so its pages and security are tested without Kafka or the services."""

from __future__ import annotations

import time
from typing import Any

import httpx

from services.console.app import create_app
from services.console.mapping_admin import MappingAdmin
from services.console.ports import (
    DeadLetterRow,
    Explained,
    Health,
    LagRow,
    LinkOutcome,
    OrderUpdate,
    PendingLink,
    ReplayCount,
    SkipGroup,
    StorePatch,
)
from shared.settings import Settings, load_settings
from shared.stores.model import LINKED, StoreRecord

ADMIN_TOKEN = "admin-token-" + "a" * 32
PASSWORD = "console-password-" + "p" * 20
READONLY = "readonly-token-" + "r" * 32
SHOP = "7494049642642441621"


def console_settings(**overrides: Any) -> Settings:
    return load_settings(shopsync_admin_token=ADMIN_TOKEN, shopsync_console_password=PASSWORD,
                         shopsync_console_readonly_token=READONLY, **overrides)


class FakeStores:
    def __init__(self) -> None:
        self.stores = [StoreRecord(nickname="Main <b>store</b>", status=LINKED, shop_id=SHOP, shop_name="US shop",
                                   warehouse_names=["LA Warehouse"])]
        self.changes: list[tuple[str, StorePatch]] = []
        self.links: dict[str, LinkOutcome] = {}

    def list(self) -> list[StoreRecord]:
        return self.stores

    async def change(self, shop_id: str, patch: StorePatch) -> str:
        self.changes.append((shop_id, patch))
        return "Updated."

    async def begin_link(self, nickname: str, warehouse: str, region: str) -> PendingLink:
        link = PendingLink("state1", "http://tiktok.example/authorize?state=state1", nickname, warehouse, region,
                           time.time())
        self.links[link.state] = LinkOutcome(link, "waiting")
        return link

    def link_outcome(self, state: str) -> LinkOutcome | None:
        return self.links.get(state)

    def start_update(self, shop_id: str, since_s: float) -> OrderUpdate:
        self.job = OrderUpdate("job1", "Main store", found=3, done=True)
        return self.job

    def update(self, job_id: str) -> OrderUpdate | None:
        return self.job if job_id == "job1" else None


class FakeOperator:
    def __init__(self) -> None:
        self.redriven = 0

    async def explain(self, order_id: str) -> Explained:
        return Explained(order_id, [], "never seen")

    async def skipped_since(self, since_s: float) -> list[SkipGroup]:
        return [SkipGroup("status:ON_HOLD", 2, "wait", ["1", "2"])]

    async def dead_letters(self) -> list[DeadLetterRow]:
        return [DeadLetterRow("2026-01-01T00:00:00Z", "order_not_found", "tiktok.webhooks", "k", False)]

    async def redrive(self, reason: str, dry_run: bool) -> int:
        if not dry_run:
            self.redriven += 1
        return 1

    async def replay(self, shop_id: str | None, from_s: float | None, only_incomplete: bool,
                     dry_run: bool) -> ReplayCount:
        return ReplayCount(4, 2, 2, dry_run)

    async def lag(self) -> list[LagRow]:
        return [LagRow("shopsync-mapping", 0)]

    async def health(self) -> list[Health]:
        return [Health("mapping", "http://127.0.0.1:8001/readyz", True)]

    async def sync_results(self) -> list[dict[str, Any]]:
        return [{"status": "applied", "kind": "inventory", "key": "OMS-1", "at": "2"},
                {"status": "failed", "kind": "shipment", "key": "s:o", "at": "1", "reason": "shipment:x",
                 "detail": "fix <it>"}]

    async def inventory_status(self, product_code: str) -> dict[str, Any]:
        return {"oms": {"available": 7}, "rows": [{"store": "Main store", "seller_sku": "RED-S", "pushed": 7,
                                                   "tiktok_quantity": 7, "last_status": "applied",
                                                   "last_reason": None}]}


class FakeMappingApi:
    """The mapping admin API's answers, as an httpx transport; records what was written."""

    def __init__(self) -> None:
        self.puts: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/unmapped":
            return httpx.Response(200, json=[{"shop_id": SHOP, "seller_sku": "GREEN-L", "mapping_status": "unmapped",
                                              "orders_waiting": 2, "order_ids": ["1", "2"], "product_name": "Tee",
                                              "sku_id": "1"}])
        if path == "/mappings" and request.method == "GET":
            return httpx.Response(200, json=[])
        if path == "/mappings/preview":
            return httpx.Response(200, json={"key": "k", "open_orders_with_sku": 2, "would_reemit": 2})
        if request.method == "PUT":
            self.puts.append(path)
            return httpx.Response(200, json={"product_code": "OMS-1", "version": 1})
        return httpx.Response(404, json={"detail": "no"})


def console_app(settings: Settings | None = None) -> tuple[Any, FakeStores, FakeOperator, FakeMappingApi]:
    stores, operator, api = FakeStores(), FakeOperator(), FakeMappingApi()
    http = httpx.AsyncClient(transport=httpx.MockTransport(api.handler), base_url="http://mapping")
    app = create_app(settings or console_settings(), stores=stores, mappings=MappingAdmin(http, ADMIN_TOKEN),
                     operator=operator)
    return app, stores, operator, api

"""Store-sync fixtures: the sandbox → gateway harness with linked stores, mappings, and the service in-process."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from services.store_sync.service import StoreSyncService, build_service, store_sync_client
from shared.admin import serve
from shared.envelope import rfc3339
from shared.kafka import create_producer
from shared.mappings import Mapping, mapping_key
from shared.settings import Settings
from shared.tiktok.client import TikTokClient
from shared.topics import MAPPINGS, OMS_INVENTORY, OMS_SHIPMENTS, SYNC_RESULTS, topic_name
from tests.ingest_harness import Harness
from tests.sandbox import MY_SHOP, US_SHOP
from tests.topicview import TopicView

LA, NJ, SHARED_A, SHARED_B = ("7000000000000000001", "7000000000000000002", "7000000000000000004",
                              "7000000000000000005")
KL = "7100000000000000001"


@dataclass
class SyncHarness:
    """A Harness plus a running store-sync service and helpers to act as the OMS."""

    base: Harness
    service: StoreSyncService | None = None
    client: TikTokClient | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def settings(self) -> Settings:
        return self.base.settings

    async def start(self) -> None:
        """The service with the client it builds for itself (no client retries), pointed at the sandbox."""
        self.stop = asyncio.Event()
        url = self.base.sandbox.base_url
        self.client = store_sync_client(self.settings, api_base=url, auth_base=url)
        self.service = build_service(self.settings, self.client, self.stop)
        self.task = asyncio.get_running_loop().create_task(serve(self.service))

    async def halt(self) -> None:
        self.stop.set()
        if self.task is not None:
            await self.task
            self.task = None
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    async def publish(self, topic: str, records: list[tuple[str, bytes]]) -> None:
        producer = create_producer(self.settings)
        await producer.start()
        try:
            futures = [await producer.send(topic_name(topic, self.settings.shopsync_topic_prefix), value,
                                           key=key.encode()) for key, value in records]
            for future in futures:
                await future
        finally:
            await producer.stop()

    async def map(self, *pairs: tuple[str, str, str]) -> None:
        """(shop_id, seller_sku, product_code) mappings, written as the mapping API writes them."""
        await self.publish(MAPPINGS, [(mapping_key(shop, sku), orjson.dumps(
            Mapping(code, rfc3339(time.time()), "test", 1).to_dict())) for shop, sku, code in pairs])

    async def ship(self, shop_id: str, order_id: str, carrier: str, tracking: str,
                   lines: list[str] | None = None, shipment_id: str | None = None) -> str:
        shipment_id = shipment_id or f"s-{uuid.uuid4().hex[:8]}"
        await self.publish(OMS_SHIPMENTS, [(f"{shop_id}:{order_id}", orjson.dumps({
            "shipment_id": shipment_id, "shop_id": shop_id, "order_id": order_id, "carrier": carrier,
            "tracking_number": tracking, "line_item_ids": lines, "shipped_at": rfc3339(time.time())}))])
        return shipment_id

    async def stock(self, *levels: tuple[str, int]) -> None:
        now = time.time()
        await self.publish(OMS_INVENTORY, [(code, orjson.dumps({
            "product_code": code, "available": qty, "as_of": rfc3339(now + i * 1e-3)}))
            for i, (code, qty) in enumerate(levels)])

    async def results(self, predicate: Any, *, within: float = 30.0) -> list[dict[str, Any]]:
        """Every sync result once `predicate(values)` holds."""
        async with TopicView(self.settings, SYNC_RESULTS) as view:
            await view.until(lambda _: predicate(view.values()), within=within)
            return view.values()

    async def sandbox_json(self, method: str, path: str, body: object = None) -> Any:
        answer = await self.base.sandbox.control(method, path, body)
        assert answer.status_code < 300, answer.text
        return answer.json()

    async def tiktok_stock(self, shop_id: str, sku_id: str) -> dict[str, int]:
        rows = (await self.sandbox_json("GET", f"/sandbox/inventory?shop_id={shop_id}"))[shop_id]
        return next(r["inventory"] for r in rows if r["sku_id"] == sku_id)

    async def sku(self, shop_id: str, seller_sku: str) -> dict[str, Any]:
        rows = (await self.sandbox_json("GET", f"/sandbox/inventory?shop_id={shop_id}"))[shop_id]
        return next(r for r in rows if r["seller_sku"] == seller_sku)

    async def calls(self, path: str) -> list[dict[str, Any]]:
        """The signed calls the sandbox recorded for `path`."""
        return [c for c in await self.sandbox_json("GET", "/sandbox/calls") if c["path"] == path]


@pytest.fixture
async def sync(harness: Harness) -> AsyncIterator[SyncHarness]:
    harness.settings = harness.settings.model_copy(update={
        "shopsync_sync_retry_base_s": 0.05, "shopsync_inventory_coalesce_s": 0.5})
    h = SyncHarness(harness)
    yield h
    await h.halt()


__all__ = ["KL", "LA", "MY_SHOP", "NJ", "SHARED_A", "SHARED_B", "SYNC_RESULTS", "US_SHOP", "SyncHarness"]

"""The mapping service + admin API under uvicorn (the `mapping` fixture in tests/conftest.py yields one), and
orders as the ingest publishes them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import orjson

from services.mapping.service import MappingService
from services.mapping.wiring import build_app
from shared.envelope import CloudEvent, to_headers
from shared.kafka import create_producer
from shared.orders import ACTIVE, WITHDRAWN, IngestedOrder, OrderLine, sku_quantities
from shared.settings import Settings
from shared.topics import ORDERS_ENRICHED, ORDERS_INGESTED, topic_name
from tests.servers import serve_app
from tests.topicview import TopicView
from tests.waiting import eventually

TOKEN = "test-admin-token"
SHOP = "7494049642642441621"


def make_order(order_id: str, skus: list[tuple[str, str]], version: int = 1, lifecycle: str = ACTIVE,
               shop_id: str = SHOP) -> IngestedOrder:
    """skus: (seller_sku, sku_id) per unit."""
    lines = [OrderLine(f"{order_id}-{i}", sku_id, seller, f"p-{sku_id}", f"Product {sku_id}", "M")
             for i, (seller, sku_id) in enumerate(skus)]
    return IngestedOrder(shop_id, order_id, version, lifecycle, "AWAITING_SHIPMENT" if lifecycle == ACTIVE else
                         "CANCELLED", "Main store", "w1", "SELLER", "FULFILLMENT_BY_SELLER", lines,
                         sku_quantities(lines), withdrawn_reason=None if lifecycle == ACTIVE else "status:CANCELLED")


async def publish(settings: Settings, *orders: IngestedOrder, at_ms: int | None = None) -> None:
    """Publish orders on `orders.ingested` as the ingest would (record timestamp `at_ms`, or now)."""
    producer = create_producer(settings)
    await producer.start()
    try:
        topic = topic_name(ORDERS_INGESTED, settings.shopsync_topic_prefix)
        for order in orders:
            value = orjson.dumps(order.to_dict())
            event = CloudEvent(id=f"{order.key}:{order.order_version}", source="test", type="shopsync.order.ingested",
                               data=value, subject=order.key)
            await producer.send_and_wait(topic, value, key=order.key.encode(), headers=to_headers(event),
                                         timestamp_ms=at_ms)
    finally:
        await producer.stop()


@dataclass
class MappingHarness:
    settings: Settings
    api: httpx.AsyncClient
    service: MappingService

    async def put(self, seller_sku: str, code: str, shop: str = SHOP) -> httpx.Response:
        return await self.api.put(f"/mappings/{shop}/{seller_sku}", json={"product_code": code})

    def enriched(self) -> TopicView:
        return TopicView(self.settings, ORDERS_ENRICHED)


def admin_token(settings: Settings) -> Settings:
    """`settings` with the admin token the harness's API client sends."""
    return settings.model_copy(update={"shopsync_admin_token": type(settings.shopsync_admin_token)(TOKEN)})


@contextlib.asynccontextmanager
async def running_mapping(settings: Settings) -> AsyncIterator[MappingHarness]:
    """The mapping service and its admin API, ready (it joined its group and restored what it owns)."""
    app, service = build_app(settings)
    async with serve_app(app) as url:
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as api:
            async def ready() -> bool:
                return (await api.get("/readyz")).status_code == 200

            await eventually(ready, within=30, what="the mapping service ready")
            yield MappingHarness(settings, api, service)


__all__ = ["ACTIVE", "SHOP", "TOKEN", "WITHDRAWN", "MappingHarness", "make_order", "publish", "running_mapping"]

"""Mapping fixtures: the service + admin API under uvicorn, and a producer of ingested orders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import orjson
import pytest

from services.mapping.service import MappingService
from services.mapping.wiring import build_app
from shared.envelope import CloudEvent, to_headers
from shared.kafka import create_producer
from shared.orders import ACTIVE, WITHDRAWN, IngestedOrder, OrderLine, sku_quantities
from shared.settings import Settings
from shared.topics import ORDERS_ENRICHED, ORDERS_INGESTED, topic_name
from tests.servers import serve_app
from tests.topicview import TopicView

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


async def publish(settings: Settings, *orders: IngestedOrder) -> None:
    producer = create_producer(settings)
    await producer.start()
    try:
        topic = topic_name(ORDERS_INGESTED, settings.shopsync_topic_prefix)
        for order in orders:
            value = orjson.dumps(order.to_dict())
            event = CloudEvent(id=f"{order.key}:{order.order_version}", source="test", type="shopsync.order.ingested",
                               data=value, subject=order.key)
            await producer.send_and_wait(topic, value, key=order.key.encode(), headers=to_headers(event))
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


@pytest.fixture
def mapping_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"shopsync_admin_token": type(settings.shopsync_admin_token)(TOKEN)})


@pytest.fixture
async def mapping(mapping_settings: Settings) -> AsyncIterator[MappingHarness]:
    app, service = build_app(mapping_settings)
    async with serve_app(app) as url:
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as api:
            async with asyncio.timeout(30):
                while (await api.get("/readyz")).status_code != 200:
                    await asyncio.sleep(0.05)
            yield MappingHarness(mapping_settings, api, service)


__all__ = ["ACTIVE", "WITHDRAWN", "MappingHarness", "make_order", "publish"]

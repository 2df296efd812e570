"""Acting as the OMS: the records `shopsync ship`, `shopsync inventory set` and the demo publish."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from shared.envelope import CloudEvent, rfc3339, to_headers
from shared.kafka import create_producer
from shared.settings import Settings
from shared.topics import OMS_INVENTORY, OMS_SHIPMENTS, topic_name


def shipment_record(shop_id: str, order_id: str, carrier: str, tracking: str, line_ids: list[str] | None = None,
                    shipment_id: str | None = None) -> dict[str, Any]:
    return {"shipment_id": shipment_id or f"cli-{uuid.uuid4().hex[:16]}", "shop_id": shop_id, "order_id": order_id,
            "carrier": carrier.strip(), "tracking_number": tracking.strip(), "line_item_ids": line_ids,
            "shipped_at": rfc3339(time.time())}


def stock_record(product_code: str, available: int) -> dict[str, Any]:
    return {"product_code": product_code.strip(), "available": available, "as_of": rfc3339(time.time())}


async def publish_shipment(settings: Settings, record: dict[str, Any]) -> None:
    await _publish(settings, OMS_SHIPMENTS, f"{record['shop_id']}:{record['order_id']}", record, "oms.shipment")


async def publish_stock(settings: Settings, record: dict[str, Any]) -> None:
    await _publish(settings, OMS_INVENTORY, record["product_code"], record, "oms.inventory")


async def _publish(settings: Settings, topic: str, key: str, record: dict[str, Any], ce_type: str) -> None:
    producer = create_producer(settings)
    await producer.start()
    try:
        value = orjson.dumps(record)
        event = CloudEvent(id=uuid.uuid4().hex, source="shopsync/cli", type=ce_type, data=value,
                           time=rfc3339(time.time()), subject=key)
        await producer.send_and_wait(topic_name(topic, settings.shopsync_topic_prefix), value, key=key.encode(),
                                     headers=to_headers(event))
    finally:
        await producer.stop()

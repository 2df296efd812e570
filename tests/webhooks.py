"""TikTok-shaped webhooks signed with the tests' app secret, and reading back what the gateway published."""

from __future__ import annotations

import time
from typing import Any

import orjson

from shared.kafka import read_to_end
from shared.settings import Settings
from shared.tiktok.signing import webhook_signature
from shared.topics import TIKTOK_WEBHOOKS
from tests.sandbox import APP_KEY, APP_SECRET


def webhook_body(order_id: str | None = "576461413038785752", *, notification_id: str | None = "7327112393057371910",
                 event_type: int = 1, timestamp: int | None = None, shop_id: str = "7494049642642441621") -> bytes:
    """A TikTok-shaped type-1 webhook body."""
    doc: dict[str, Any] = {"type": event_type, "shop_id": shop_id, "timestamp": timestamp or int(time.time()),
                           "data": {"order_status": "AWAITING_SHIPMENT", "is_on_hold_order": False,
                                    "update_time": int(time.time())}}
    if order_id is not None:
        doc["data"]["order_id"] = order_id
    if notification_id is not None:
        doc["tts_notification_id"] = notification_id
    return orjson.dumps(doc)


def sign(body: bytes, secret: str = APP_SECRET, key: str = APP_KEY) -> dict[str, str]:
    return {"Authorization": webhook_signature(key, secret, body), "Content-Type": "application/json"}


async def published_webhooks(settings: Settings) -> list[Any]:
    """Every record on the webhooks topic now.

    The gateway answers a webhook only once its record is acknowledged (or refused), so once the answers are in
    there is nothing more on its way: no waiting for stragglers.
    """
    return [record async for record in read_to_end(settings, TIKTOK_WEBHOOKS)]

"""Validate a verified webhook body's envelope and derive the Kafka record (key + CloudEvents headers)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson

from shared.envelope import CloudEvent, rfc3339, to_headers
from shared.tiktok.event_types import cloudevent_type

MAX_ID_LENGTH = 128


class InvalidWebhook(ValueError):
    """A body that is not a valid TikTok webhook envelope; `code` is the machine-readable error."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Webhook:
    """The envelope fields the gateway needs."""

    type: int
    shop_id: str
    timestamp: int
    notification_id: str | None
    order_id: str | None

    @property
    def key(self) -> str:
        return f"{self.shop_id}:{self.order_id}" if self.order_id else self.shop_id


def parse_webhook(body: bytes, now: float, max_age_s: int, max_future_s: int) -> Webhook:
    """Parse and validate the envelope: `type` int, `shop_id` str, `timestamp` int seconds, `data` object."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidWebhook("invalid_json", f"body is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidWebhook("not_an_object", f"body must be a JSON object, not {type(doc).__name__}")
    event_type = _int_field(doc, "type")
    shop_id = _str_field(doc, "shop_id")
    timestamp = _int_field(doc, "timestamp")
    data = doc.get("data")
    if "data" not in doc:
        raise InvalidWebhook("missing_field", "field 'data' is required")
    if not isinstance(data, dict):
        raise InvalidWebhook("invalid_field", "field 'data' must be an object")
    notification_id = doc.get("tts_notification_id")
    if notification_id is not None and (not isinstance(notification_id, str) or not notification_id
                                        or len(notification_id) > MAX_ID_LENGTH):
        raise InvalidWebhook("invalid_field", "field 'tts_notification_id' must be a non-empty string")
    order_id = data.get("order_id")
    if isinstance(order_id, int) and not isinstance(order_id, bool):
        order_id = str(order_id)
    if order_id is not None and (not isinstance(order_id, str) or len(order_id) > MAX_ID_LENGTH):
        raise InvalidWebhook("invalid_field", "field 'data.order_id' must be a string")
    if timestamp > now + max_future_s:
        raise InvalidWebhook("future_event", f"timestamp {timestamp} is more than {max_future_s}s in the future")
    if timestamp < now - max_age_s:
        raise InvalidWebhook("stale_event", f"timestamp {timestamp} is older than {max_age_s}s")
    return Webhook(event_type, shop_id, timestamp, notification_id, order_id or None)


def _int_field(doc: dict, name: str) -> int:
    if name not in doc:
        raise InvalidWebhook("missing_field", f"field '{name}' is required")
    value = doc[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidWebhook("invalid_field", f"field '{name}' must be an integer")
    if not 0 <= value < 2**53:
        raise InvalidWebhook("invalid_field", f"field '{name}' is out of range")
    return value


def _str_field(doc: dict, name: str) -> str:
    if name not in doc:
        raise InvalidWebhook("missing_field", f"field '{name}' is required")
    value = doc[name]
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
        raise InvalidWebhook("invalid_field", f"field '{name}' must be a non-empty string")
    return value


def record_headers(webhook: Webhook, body: bytes, received_at: float, traceparent: str) -> list[tuple[str, bytes]]:
    """CloudEvents binary-mode headers plus `shopsync_received_at` and `traceparent`."""
    event = CloudEvent(
        id=webhook.notification_id or hashlib.sha256(body).hexdigest(),
        source=f"tiktok-shop/{webhook.shop_id}",
        type=cloudevent_type(webhook.type),
        data=body,
        time=rfc3339(webhook.timestamp),
        subject=webhook.key,
    )
    return to_headers(event, extra=[("shopsync_received_at", rfc3339(received_at)), ("traceparent", traceparent)])

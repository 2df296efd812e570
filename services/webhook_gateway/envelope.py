"""Validate a verified webhook body's envelope and derive the Kafka record (key + CloudEvents headers).

The envelope is read by `shared.tiktok.webhooks.parse_envelope`, the first half of the parser every consumer uses,
so the gateway and its consumers cannot disagree about it. The gateway judges only what it needs itself: the
envelope, its age, and `data.order_id` (the record key). The rest of `data` is left to the consumers: a webhook
TikTok signed is kept even if its `data` is malformed, and the consumer that cannot read it dead-letters it with
the field named (replayable once fixed), where a 400 would make TikTok give up on it after four retries.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TypeVar

from shared.envelope import JSON, SPEC_VERSION, CloudEvent, rfc3339, to_headers
from shared.tiktok.errors import MalformedPayload
from shared.tiktok.event_types import cloudevent_type
from shared.tiktok.webhooks import parse_envelope

K = TypeVar("K")
MAX_KEPT = 65_536  # shops and event types whose header values are kept


class InvalidWebhook(ValueError):
    """A body that is not a valid TikTok webhook envelope; `code` is the machine-readable error."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Received:
    """The envelope fields the gateway needs."""

    type: int
    shop_id: str
    timestamp: int
    notification_id: str | None
    order_id: str | None

    @property
    def key(self) -> str:
        """`shop:order` when `data.order_id` names the order, else the shop (a PACKAGE_UPDATE names its orders
        in `package_list`, API facts §10.3)."""
        return f"{self.shop_id}:{self.order_id}" if self.order_id else self.shop_id


def parse_webhook(body: bytes, now: float, max_age_s: int, max_future_s: int) -> Received:
    """The envelope, checked: `type` int, `shop_id` str, `timestamp` int seconds within the window, `data` object;
    raises InvalidWebhook with the parser's machine code (invalid_json, not_an_object, missing_field,
    invalid_field) or future_event / stale_event."""
    try:
        envelope = parse_envelope(body)
    except MalformedPayload as exc:
        raise InvalidWebhook(exc.problem, str(exc)) from None
    timestamp = envelope.timestamp
    if timestamp > now + max_future_s:
        raise InvalidWebhook("future_event", f"timestamp {timestamp} is more than {max_future_s}s in the future")
    if timestamp < now - max_age_s:
        raise InvalidWebhook("stale_event", f"timestamp {timestamp} is older than {max_age_s}s")
    return Received(envelope.type, envelope.shop_id, timestamp, envelope.tts_notification_id, envelope.order_id)


def record_headers(webhook: Received, body: bytes, received_at: float, traceparent: str) -> list[tuple[str, bytes]]:
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


class RecordHeaders:
    """`record_headers` for the hot path, the same list: the constant headers are built once, and the source and
    type of the shops and event types seen are kept (bounded) instead of formatted and encoded per request."""

    def __init__(self) -> None:
        self._sources: dict[str, tuple[str, bytes]] = {}
        self._types: dict[int, tuple[str, bytes]] = {}

    def of(self, webhook: Received, body: bytes, received_at: float, traceparent: str) -> list[tuple[str, bytes]]:
        if (source := self._sources.get(webhook.shop_id)) is None:
            source = _keep(self._sources, webhook.shop_id, ("ce_source", f"tiktok-shop/{webhook.shop_id}".encode()))
        if (event_type := self._types.get(webhook.type)) is None:
            event_type = _keep(self._types, webhook.type, ("ce_type", cloudevent_type(webhook.type).encode()))
        event_id = webhook.notification_id or hashlib.sha256(body).hexdigest()
        return [_SPEC_VERSION, ("ce_id", event_id.encode()), source, event_type,
                ("ce_time", rfc3339(webhook.timestamp).encode()), ("ce_subject", webhook.key.encode()), _CONTENT_TYPE,
                ("shopsync_received_at", rfc3339(received_at).encode()), ("traceparent", traceparent.encode())]



def _keep(kept: dict[K, tuple[str, bytes]], key: K, value: tuple[str, bytes]) -> tuple[str, bytes]:
    if len(kept) >= MAX_KEPT:
        kept.clear()
    kept[key] = value
    return value


_SPEC_VERSION = ("ce_specversion", SPEC_VERSION.encode())
_CONTENT_TYPE = ("content-type", JSON.encode())

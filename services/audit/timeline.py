"""Turn a record from one of the order topics into a compact timeline entry (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from shared.dlq import read_dead_letter
from shared.envelope import header_map
from shared.tiktok.errors import MalformedPayload
from shared.tiktok.webhooks import OrderStatusChange, parse_webhook
from shared.topics import (
    DLQ,
    OMS_SHIPMENTS,
    ORDERS_ENRICHED,
    ORDERS_INGESTED,
    ORDERS_SKIPPED,
    SYNC_RESULTS,
    TIKTOK_WEBHOOKS,
)
from shared.tracing import trace_id

AUDITED = (TIKTOK_WEBHOOKS, ORDERS_INGESTED, ORDERS_SKIPPED, ORDERS_ENRICHED, DLQ, OMS_SHIPMENTS, SYNC_RESULTS)


@dataclass(frozen=True, slots=True)
class Entry:
    shop_id: str
    order_id: str
    at: str
    kind: str  # webhook | accepted | withdrawn | skipped | enriched | dead_letter | shipment | shipment_sync
    detail: dict[str, Any]


def entry_for(topic: str, key: bytes | None, value: bytes | None, headers: Any, timestamp_ms: int) -> Entry | None:
    """The timeline entry for a record, or None when it names no order; `detail.trace_id` is the trace its
    `traceparent` header names (the one to open in the tracing backend)."""
    entry = _entry_for(topic, key, value, headers, timestamp_ms)
    if entry is not None and (traced := trace_id(header_map(headers).get("traceparent"))):
        entry.detail["trace_id"] = traced
    return entry


def _entry_for(topic: str, key: bytes | None, value: bytes | None, headers: Any, timestamp_ms: int) -> Entry | None:
    h = header_map(headers)
    at = h.get("shopsync_received_at") or h.get("ce_time") or str(timestamp_ms)
    if topic == DLQ:
        letter = read_dead_letter(key, value, headers)
        shop_id, order_id = _split(letter.key)
        if not order_id:
            shop_id, order_id = _ids_from_body(letter.value)
        return Entry(shop_id, order_id, letter.at or at, "dead_letter",
                     {"reason": letter.reason, "source_topic": letter.source_topic}) if order_id else None
    if value is None:
        return None
    if topic == TIKTOK_WEBHOOKS:
        return _webhook_entry(value, at, h.get("ce_type"))
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    shop_id, order_id = str(doc.get("shop_id", "")), str(doc.get("order_id", ""))
    if not order_id:
        return None
    if topic == OMS_SHIPMENTS:
        return Entry(shop_id, order_id, str(doc.get("shipped_at") or at), "shipment", {
            k: doc.get(k) for k in ("shipment_id", "carrier", "tracking_number", "line_item_ids")})
    if topic == SYNC_RESULTS:
        if doc.get("kind") != "shipment":
            return None
        return Entry(shop_id, order_id, str(doc.get("synced_at") or at), "shipment_sync", {
            k: doc.get(k) for k in ("shipment_id", "status", "reason", "detail", "endpoint", "tracking_number",
                                    "attempts", "tiktok_code", "warning")})
    if topic == ORDERS_INGESTED:
        kind = "withdrawn" if doc.get("lifecycle") == "withdrawn" else "accepted"
        return Entry(shop_id, order_id, doc.get("ingested_at") or at, kind, {
            "order_version": doc.get("order_version"), "status": doc.get("status"),
            "reason": doc.get("withdrawn_reason"), "store_nickname": doc.get("store_nickname")})
    if topic == ORDERS_SKIPPED:
        return Entry(shop_id, order_id, doc.get("skipped_at") or at, "skipped", {
            "reasons": doc.get("reasons"), "status": doc.get("status"), "warehouse_id": doc.get("warehouse_id"),
            "store_nickname": doc.get("store_nickname"), "decided_from": doc.get("decided_from")})
    if topic == ORDERS_ENRICHED:
        return Entry(shop_id, order_id, doc.get("enriched_at") or at, "enriched", {
            "revision": doc.get("revision"), "cause": doc.get("cause"), "mapping_state": doc.get("mapping_state"),
            "lifecycle": doc.get("lifecycle"),
            "lines": [{k: line.get(k) for k in ("seller_sku", "sku_id", "product_name", "mapping_status",
                                                "product_code")} for line in doc.get("lines") or []]})
    return None


def _webhook_entry(value: bytes, at: str, event: str | None) -> Entry | None:
    """A webhook naming one order (`data.order_id`); one the parser refuses is left to its dead letter."""
    try:
        webhook = parse_webhook(value)
    except MalformedPayload:
        return None
    if webhook.order_id is None:
        return None
    status = webhook.data.order_status if isinstance(webhook.data, OrderStatusChange) else None
    return Entry(webhook.shop_id, webhook.order_id, at, "webhook", {
        "type": webhook.type, "event": event, "status": status, "notification_id": webhook.tts_notification_id})


def _split(key: bytes | None) -> tuple[str, str]:
    text = (key or b"").decode("utf-8", "replace")
    shop_id, _, order_id = text.partition(":")
    return shop_id, order_id


def _ids_from_body(value: bytes | None) -> tuple[str, str]:
    """The shop and order a dead letter's value names (a webhook's `data.order_id`, or an order's `order_id`).
    Read leniently on purpose: a dead letter is what a parser refused."""
    try:
        doc = orjson.loads(value or b"")
        data = doc.get("data") or {}
        return str(doc.get("shop_id", "")), str(data.get("order_id", "") or doc.get("order_id", ""))
    except (orjson.JSONDecodeError, AttributeError):
        return "", ""

"""The OMS's input records (`oms.shipments`, `oms.inventory`), parsed once into typed objects.

A record that cannot be parsed raises `BadRecord` with a machine-readable reason naming the field; the worker
dead-letters it with that reason and moves on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson


class BadRecord(ValueError):
    """An input record the OMS got wrong; `reason` is what the DLQ shows (e.g. `shipment:missing_field:carrier`)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Shipment:
    """The OMS shipped (some lines of) an order; `shipment_id` is the OMS's own id (idempotency)."""

    shipment_id: str
    shop_id: str
    order_id: str
    carrier: str
    tracking_number: str
    line_item_ids: tuple[str, ...] | None  # None: every line not yet shipped
    shipped_at: str

    @property
    def key(self) -> str:
        return f"{self.shop_id}:{self.order_id}"


@dataclass(frozen=True, slots=True)
class StockLevel:
    """The OMS's sellable quantity of one product at `as_of`."""

    product_code: str
    available: int
    as_of: str
    as_of_ts: float


def parse_shipment(value: bytes | None) -> Shipment:
    doc = _object(value, "shipment")
    texts = {name: _text(doc, name, "shipment")
             for name in ("shipment_id", "shop_id", "order_id", "carrier", "tracking_number")}
    line_ids = doc.get("line_item_ids")
    if line_ids is not None and (not isinstance(line_ids, list) or not line_ids
                                 or not all(isinstance(i, str) and i.strip() for i in line_ids)):
        raise BadRecord("shipment:invalid_field:line_item_ids", "line_item_ids must be null or a non-empty list of "
                                                                "line item id strings")
    shipped_at = _text(doc, "shipped_at", "shipment")
    _timestamp(shipped_at, "shipment", "shipped_at")
    return Shipment(**texts, line_item_ids=tuple(i.strip() for i in line_ids) if line_ids is not None else None,
                    shipped_at=shipped_at)


def parse_stock(value: bytes | None) -> StockLevel:
    doc = _object(value, "inventory")
    available = doc.get("available")
    if "available" not in doc:
        raise BadRecord("inventory:missing_field:available", "available is required")
    if isinstance(available, bool) or not isinstance(available, int):
        raise BadRecord("inventory:invalid_field:available", f"available must be an integer, got {available!r}")
    if available < 0:
        raise BadRecord("inventory:negative_quantity", f"available must be >= 0, got {available}")
    as_of = _text(doc, "as_of", "inventory")
    return StockLevel(_text(doc, "product_code", "inventory"), available, as_of,
                      _timestamp(as_of, "inventory", "as_of"))


def _object(value: bytes | None, kind: str) -> dict[str, Any]:
    if value is None:
        raise BadRecord(f"{kind}:empty_record", "the record has no value")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise BadRecord(f"{kind}:invalid_json", str(exc)) from None
    if not isinstance(doc, dict):
        raise BadRecord(f"{kind}:invalid_json", "the value must be a JSON object")
    return doc


def _text(doc: dict[str, Any], name: str, kind: str) -> str:
    if name not in doc or doc[name] is None:
        raise BadRecord(f"{kind}:missing_field:{name}", f"{name} is required")
    value = doc[name]
    if not isinstance(value, str) or not value.strip():
        raise BadRecord(f"{kind}:invalid_field:{name}", f"{name} must be a non-empty string")
    return value.strip()


def _timestamp(text: str, kind: str, name: str) -> float:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadRecord(f"{kind}:invalid_field:{name}", f"{name} must be an RFC 3339 time, got {text!r}") from None
    if parsed.tzinfo is None:
        raise BadRecord(f"{kind}:invalid_field:{name}", f"{name} needs a UTC offset (e.g. Z), got {text!r}")
    return parsed.timestamp()

"""Product and inventory webhooks (types 5, 15, 16, 27) as typed events, ids kept as exact strings.

TikTok sends ids as strings in most samples but as JSON numbers in others (type 5, and type 16 in DOCS
`16-product-creation.md`); a 21-digit number does not fit 64 bits, and orjson reads it as a float (digits lost).
So these bodies are parsed with every integer kept as its digits, and an id is accepted as a string or a number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

PRODUCT_EVENTS = frozenset({5, 15, 16})  # status change, information change, creation
INVENTORY_STATUS_CHANGE = 27


@dataclass(frozen=True, slots=True)
class ProductEvent:
    type: int
    shop_id: str
    product_id: str
    sku_id: str | None = None
    status: str | None = None  # type 5 only


def parse_product_event(value: bytes | None) -> ProductEvent | None:
    """The event, or None for anything store sync does not act on (other types, no product id, bad JSON)."""
    try:
        doc = json.loads(value or b"", parse_int=str)  # integers stay exact: "7494049642642441621"
        kind, data = int(doc["type"]), doc.get("data") or {}
        shop_id = id_text(doc.get("shop_id"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if kind not in PRODUCT_EVENTS and kind != INVENTORY_STATUS_CHANGE or not isinstance(data, dict):
        return None
    product_id = id_text(data.get("product_id"))
    if shop_id is None or product_id is None:
        return None
    status = data.get("status") if kind == 5 and isinstance(data.get("status"), str) else None
    return ProductEvent(kind, shop_id, product_id, id_text(data.get("sku_id")), status or None)


def id_text(value: object) -> str | None:
    """An id as its digits, whether TikTok sent a string or a JSON number (already text after parsing)."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None

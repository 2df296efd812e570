"""Product and inventory webhooks (types 5, 15, 16, 27) as typed events, ids kept as exact strings.

TikTok sends ids as strings in most samples but as JSON numbers in others (type 5, and type 16 in DOCS
`16-product-creation.md`); a 21-digit number does not fit 64 bits, and orjson reads it as a float (digits lost).
So these bodies are parsed with every integer kept as its digits, and an id is accepted as a string or a number.

Every product event means "re-read this product": type 5's `data.status` is an audit event
(`PRODUCT_FIRST_PASS_REVIEW`, `PRODUCT_STATUS_CHANGED`, `PRODUCT_AUDIT_FAILURE`, API facts §10.4), never a product
status, so it is kept as `audit_event` for the logs only; the status comes from Get Product.
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
    update_time: int | None = None  # TikTok's `data.update_time`: what events are ordered by
    audit_event: str | None = None  # type 5 only; for the logs, not a product status

    @property
    def ordering_key(self) -> tuple[str, ...]:
        """What `update_time` is compared within: the product, or the SKU for a type 27."""
        if self.type == INVENTORY_STATUS_CHANGE:
            return (self.shop_id, self.product_id, self.sku_id or "")
        return (self.shop_id, self.product_id)


def parse_product_event(value: bytes | None) -> ProductEvent | None:
    """The event, or None for anything store sync does not act on (other types, no product id, bad JSON)."""
    try:
        doc = json.loads(value or b"", parse_int=str)  # integers stay exact: "7494049642642441621"
        kind, data = int(doc["type"]), doc.get("data") or {}
        shop_id = id_text(doc.get("shop_id"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if (kind not in PRODUCT_EVENTS and kind != INVENTORY_STATUS_CHANGE) or not isinstance(data, dict):
        return None
    product_id = id_text(data.get("product_id"))
    if shop_id is None or product_id is None:
        return None
    audit = data.get("status") if kind == 5 and isinstance(data.get("status"), str) else None
    return ProductEvent(kind, shop_id, product_id, id_text(data.get("sku_id")), unix_time(data.get("update_time")),
                        audit or None)


def id_text(value: object) -> str | None:
    """An id as its digits, whether TikTok sent a string or a JSON number (already text after parsing)."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def unix_time(value: object) -> int | None:
    """`update_time` as an int (a JSON number, kept as its digits by the parse); None when absent or malformed."""
    text = value.strip() if isinstance(value, str) else ""
    return int(text) if text.isdigit() else None

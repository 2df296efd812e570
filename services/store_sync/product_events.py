"""Product and inventory webhooks (types 5, 15, 16, 27) as store sync's events: what to re-read, ordered by what.

The webhook is parsed by `shared.tiktok.webhooks.parse_webhook`: ids are exact strings whether TikTok sent a
string or a JSON number (even one beyond 64 bits), and type 5's `data.status` is an audit event
(`PRODUCT_FIRST_PASS_REVIEW`, `PRODUCT_STATUS_CHANGED`, `PRODUCT_AUDIT_FAILURE`, API facts §10.4), never a product
status, so it is kept as `audit_event` for the logs only; the status comes from Get Product.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.tiktok.errors import MalformedPayload
from shared.tiktok.event_types import INVENTORY_STATUS_CHANGE
from shared.tiktok.webhooks import InventoryStatusChange, ProductChange, Webhook, parse_webhook


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


def product_event(webhook: Webhook) -> ProductEvent | None:
    """The event of a product or inventory webhook; None for other topics."""
    data = webhook.data
    if isinstance(data, ProductChange):
        return ProductEvent(webhook.type, webhook.shop_id, data.product_id, None, data.update_time, data.audit_event)
    if isinstance(data, InventoryStatusChange):
        return ProductEvent(webhook.type, webhook.shop_id, data.product_id, data.sku_id, data.update_time)
    return None


def parse_product_event(value: bytes | None) -> ProductEvent | None:
    """The event in a webhook record, or None for anything store sync cannot act on (other topics, or a body the
    parser refuses: `ProductWebhookFeed` logs those)."""
    try:
        return product_event(parse_webhook(value or b""))
    except MalformedPayload:
        return None

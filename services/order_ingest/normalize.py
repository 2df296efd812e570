"""A TikTok 202309 order object → the normalized `IngestedOrder`."""

from __future__ import annotations

from typing import Any

from services.order_ingest.decide import OrderFacts, normalize_status
from shared.envelope import rfc3339
from shared.orders import ACTIVE, IngestedOrder, Lifecycle, OrderLine, Recipient, sku_quantities


def order_facts(raw: dict[str, Any]) -> OrderFacts:
    return OrderFacts(status=normalize_status(str(raw.get("status", ""))),
                      fulfillment_type=str(raw.get("fulfillment_type", "")),
                      shipping_type=str(raw.get("shipping_type", "")),
                      warehouse_id=str(raw.get("warehouse_id", "")))


def normalize_order(raw: dict[str, Any], shop_id: str, store_nickname: str, now: float,
                    lifecycle: Lifecycle = ACTIVE, withdrawn_reason: str | None = None) -> IngestedOrder:
    """Raises KeyError/ValueError/TypeError on an order object without the fields the contract needs."""
    lines = [OrderLine(
        line_id=str(item["id"]), sku_id=str(item["sku_id"]), seller_sku=str(item.get("seller_sku") or "").strip(),
        product_id=str(item.get("product_id", "")), product_name=str(item.get("product_name", "")),
        sku_name=str(item.get("sku_name", "")), sale_price=_opt_str(item.get("sale_price")),
        original_price=_opt_str(item.get("original_price")), package_id=_opt_str(item.get("package_id") or None),
    ) for item in raw.get("line_items") or []]
    address = raw.get("recipient_address")
    recipient = Recipient(**{k: _opt_str(address.get(k)) for k in (
        "name", "phone_number", "full_address", "address_line1", "address_line2", "postal_code", "region_code")}
    ) if isinstance(address, dict) else None
    payment = raw.get("payment") if isinstance(raw.get("payment"), dict) else {}
    return IngestedOrder(
        shop_id=shop_id, order_id=str(raw["id"]), order_version=int(raw["update_time"]), lifecycle=lifecycle,
        status=normalize_status(str(raw["status"])), store_nickname=store_nickname,
        warehouse_id=str(raw.get("warehouse_id", "")), shipping_type=str(raw.get("shipping_type", "")),
        fulfillment_type=str(raw.get("fulfillment_type", "")), lines=lines, sku_quantities=sku_quantities(lines),
        recipient=recipient, currency=_opt_str(payment.get("currency")), create_time=_opt_int(raw.get("create_time")),
        paid_time=_opt_int(raw.get("paid_time")), rts_sla_time=_opt_int(raw.get("rts_sla_time")),
        shipping_due_time=_opt_int(raw.get("shipping_due_time")),
        collection_due_time=_opt_int(raw.get("collection_due_time")),
        delivery_due_time=_opt_int(raw.get("delivery_due_time")), withdrawn_reason=withdrawn_reason,
        ingested_at=rfc3339(now),
        extra={"delivery_option_id": raw.get("delivery_option_id"), "total_amount": payment.get("total_amount"),
               "buyer_message": raw.get("buyer_message")},
    )


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _opt_int(value: object) -> int | None:
    return None if value in (None, "") else int(value)  # type: ignore[arg-type]

"""A TikTok order (`TikTokOrder`, parsed by the client) → the normalized `IngestedOrder` the OMS receives."""

from __future__ import annotations

from services.order_ingest.decide import normalize_status
from shared.envelope import rfc3339
from shared.orders import ACTIVE, IngestedOrder, Lifecycle, OrderLine, Recipient, sku_quantities
from shared.tiktok.orders import TikTokOrder


def normalize_order(order: TikTokOrder, shop_id: str, store_nickname: str, now: float,
                    lifecycle: Lifecycle = ACTIVE, withdrawn_reason: str | None = None) -> IngestedOrder:
    """The `orders.ingested` value: text TikTok left out is "" where the contract wants a string, else null."""
    lines = [OrderLine(
        line_id=line.id, sku_id=line.sku_id, seller_sku=(line.seller_sku or "").strip(),
        product_id=line.product_id or "", product_name=line.product_name or "", sku_name=line.sku_name or "",
        sale_price=line.sale_price, original_price=line.original_price, package_id=line.package_id,
    ) for line in order.line_items]
    address = order.recipient_address
    recipient = Recipient(
        name=address.name, phone_number=address.phone_number, full_address=address.full_address,
        address_line1=address.address_line1, address_line2=address.address_line2, postal_code=address.postal_code,
        region_code=address.region_code) if address is not None else None
    payment = order.payment
    return IngestedOrder(
        shop_id=shop_id, order_id=order.id, order_version=order.update_time, lifecycle=lifecycle,
        status=normalize_status(order.status), store_nickname=store_nickname, warehouse_id=order.warehouse_id or "",
        shipping_type=order.shipping_type or "", fulfillment_type=order.fulfillment_type or "", lines=lines,
        sku_quantities=sku_quantities(lines), recipient=recipient,
        currency=payment.currency if payment is not None else None, create_time=order.create_time,
        paid_time=order.paid_time, rts_sla_time=order.rts_sla_time, shipping_due_time=order.shipping_due_time,
        collection_due_time=order.collection_due_time, delivery_due_time=order.delivery_due_time,
        withdrawn_reason=withdrawn_reason, ingested_at=rfc3339(now),
        extra={"delivery_option_id": order.delivery_option_id,
               "total_amount": payment.total_amount if payment is not None else None,
               "buyer_message": order.buyer_message},
    )

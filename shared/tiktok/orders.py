"""TikTok's order (Get Order Detail / Search Orders, API 202309) as a typed value, parsed once by the client.

Only the fields shopsync reads are modelled; each is checked by the rules of `shared.tiktok.fields` (ids as
strings whatever their JSON type, absent = null = None, times as Unix seconds, money as strings).

Required: `id`, `status`, `update_time`, and each line's `id` and `sku_id` (there is no quantity: a line is one
unit, §3.1). One default is applied, here and nowhere else: **a missing `fulfillment_type` is
FULFILLMENT_BY_SELLER when `shipping_type` is SELLER**, because TikTok's Order API overview says its two shipping
types exist only under FULFILLMENT_BY_SELLER (API facts §2.2), so a seller-shipped order is seller-fulfilled.
With any other `shipping_type` it stays None (it could be fulfilled by TikTok), and the order does not qualify.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.tiktok.fields import Fields, parse_exactly

AWAITING_SHIPMENT = "AWAITING_SHIPMENT"
PARTIALLY_SHIPPING = "PARTIALLY_SHIPPING"
CANCELLED = "CANCELLED"
SELLER_SHIPPING = "SELLER"  # `shipping_type`: the seller (or their 3PL) ships; TIKTOK: TikTok's label
FULFILLMENT_BY_SELLER = "FULFILLMENT_BY_SELLER"
LINE_CANCELLED = "CANCELLED"  # a line's `package_status` / `display_status`


@dataclass(frozen=True, slots=True)
class LineItem:
    """One unit of one SKU. `package_id` is None until TikTok packs the line; `tracking_number` is set once
    the line's package has shipped."""

    id: str
    sku_id: str
    seller_sku: str | None
    product_id: str | None
    product_name: str | None
    sku_name: str | None
    sale_price: str | None
    original_price: str | None
    package_id: str | None
    package_status: str | None  # TO_FULFILL, PROCESSING, FULFILLING, COMPLETED, CANCELLED
    display_status: str | None
    tracking_number: str | None

    @property
    def is_cancelled(self) -> bool:
        return self.package_status == LINE_CANCELLED or self.display_status == LINE_CANCELLED


@dataclass(frozen=True, slots=True)
class OrderPackage:
    id: str


@dataclass(frozen=True, slots=True)
class RecipientAddress:
    """Absent while the order is UNPAID or ON_HOLD; masked when TikTok ships (§2.2)."""

    name: str | None
    phone_number: str | None
    full_address: str | None
    address_line1: str | None
    address_line2: str | None
    postal_code: str | None
    region_code: str | None


@dataclass(frozen=True, slots=True)
class Payment:
    currency: str | None
    total_amount: str | None


@dataclass(frozen=True, slots=True)
class TikTokOrder:
    """An order as TikTok shows it now (`update_time`: the time of its last status change, §10.12)."""

    id: str
    status: str
    update_time: int
    shipping_type: str | None
    fulfillment_type: str | None  # see the module docstring for the one default
    warehouse_id: str | None
    delivery_option_id: str | None
    line_items: tuple[LineItem, ...]
    packages: tuple[OrderPackage, ...]
    recipient_address: RecipientAddress | None
    payment: Payment | None
    create_time: int | None
    paid_time: int | None
    rts_sla_time: int | None
    shipping_due_time: int | None
    collection_due_time: int | None
    delivery_due_time: int | None
    buyer_message: str | None

    @property
    def seller_ships(self) -> bool:
        """Fulfilled and shipped by the seller: the orders shopsync imports (§2.2, §8)."""
        return self.fulfillment_type == FULFILLMENT_BY_SELLER and self.shipping_type == SELLER_SHIPPING


def parse_order(raw: bytes | Mapping[str, Any]) -> TikTokOrder:
    """One order object of Get Order Detail or Search Orders; raises MalformedPayload naming the field."""
    return parse_exactly(raw, read_order)


def read_order(order: Fields) -> TikTokOrder:
    """The order in `order` (field names relative to the order object)."""
    order_id, status, update_time = order.id("id"), order.text("status"), order.time("update_time")
    shipping_type = order.optional_text("shipping_type") or None
    fulfillment_type = order.optional_text("fulfillment_type") or None
    if fulfillment_type is None and shipping_type == SELLER_SHIPPING:
        fulfillment_type = FULFILLMENT_BY_SELLER
    address = order.optional_object("recipient_address")
    payment = order.optional_object("payment")
    return TikTokOrder(
        id=order_id, status=status, update_time=update_time, shipping_type=shipping_type,
        fulfillment_type=fulfillment_type, warehouse_id=order.optional_id("warehouse_id"),
        delivery_option_id=order.optional_id("delivery_option_id"),
        line_items=tuple(_line(line) for line in order.objects("line_items")),
        packages=tuple(OrderPackage(package.id("id")) for package in order.objects("packages")),
        recipient_address=RecipientAddress(
            address.optional_text("name"), address.optional_text("phone_number"),
            address.optional_text("full_address"), address.optional_text("address_line1"),
            address.optional_text("address_line2"), address.optional_text("postal_code"),
            address.optional_text("region_code")) if address is not None else None,
        payment=Payment(payment.optional_text("currency"), payment.optional_text("total_amount"))
        if payment is not None else None,
        create_time=order.optional_time("create_time"), paid_time=order.optional_time("paid_time"),
        rts_sla_time=order.optional_time("rts_sla_time"), shipping_due_time=order.optional_time("shipping_due_time"),
        collection_due_time=order.optional_time("collection_due_time"),
        delivery_due_time=order.optional_time("delivery_due_time"), buyer_message=order.optional_text("buyer_message"),
    )


def _line(line: Fields) -> LineItem:
    return LineItem(
        id=line.id("id"), sku_id=line.id("sku_id"), seller_sku=line.optional_text("seller_sku"),
        product_id=line.optional_id("product_id"), product_name=line.optional_text("product_name"),
        sku_name=line.optional_text("sku_name"), sale_price=line.optional_text("sale_price"),
        original_price=line.optional_text("original_price"), package_id=line.optional_id("package_id"),
        package_status=line.optional_text("package_status"), display_status=line.optional_text("display_status"),
        tracking_number=line.optional_text("tracking_number"))

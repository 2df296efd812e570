"""TikTok Shop webhooks as typed values, parsed once (`parse_webhook`) by every service that reads them.

The envelope (API facts §1.4): `type`, `tts_notification_id` (absent on some topics, e.g. type 3), `shop_id`,
`timestamp` (Unix seconds) and `data`. `data` is typed per topic with the shapes TikTok sends (§10): a
PACKAGE_UPDATE names its orders in `package_list[].order_id_list`, never in `data.order_id` (§10.3); a
PRODUCT_STATUS_CHANGE's `data.status` is an audit event, never a product status (§10.4, so it is `audit_event`
here); product ids may be JSON numbers (§10.13). Topics the product does not act on read as `OtherEvent`.

A field the product needs that is missing or of the wrong type raises `MalformedPayload` naming it (the field
rules are `shared.tiktok.fields`); fields the product does not read are not judged. `parse_envelope` is the first
half of `parse_webhook`: the part every webhook has, whatever its topic (what the gateway judges).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.tiktok import event_types
from shared.tiktok.errors import MalformedPayload
from shared.tiktok.fields import Fields, parse_exactly

MAX_SAFE_INTEGER = 2**53  # `type` and `timestamp` beyond it are not TikTok's


@dataclass(frozen=True, slots=True)
class OrderStatusChange:
    """Type 1. `order_status` as TikTok spells it in webhooks (`CANCEL`, where the Order API says `CANCELLED`)."""

    order_id: str
    order_status: str | None
    update_time: int | None


@dataclass(frozen=True, slots=True)
class RecipientAddressUpdate:
    """Type 3."""

    order_id: str
    update_time: int | None


@dataclass(frozen=True, slots=True)
class UpdatedPackage:
    package_id: str | None
    order_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PackageUpdate:
    """Type 4: packages split, combined or cancelled; every order of `packages` needs re-reading (§10.3)."""

    packages: tuple[UpdatedPackage, ...]
    sc_type: str | None
    update_time: int | None

    @property
    def order_ids(self) -> tuple[str, ...]:
        """Each order the packages name, once, in the order TikTok lists them."""
        return tuple(dict.fromkeys(order_id for package in self.packages for order_id in package.order_ids))


@dataclass(frozen=True, slots=True)
class CancellationStatusChange:
    """Type 11 (no `update_time` in TikTok's samples: such events are ordered by a re-read)."""

    order_id: str
    cancel_status: str | None
    update_time: int | None


@dataclass(frozen=True, slots=True)
class ReturnStatusChange:
    """Type 12 (no service acts on it; the audit timeline shows it)."""

    order_id: str
    return_status: str | None
    update_time: int | None


@dataclass(frozen=True, slots=True)
class ProductChange:
    """Types 5, 15 and 16: "re-read this product". `audit_event` is type 5's `data.status`
    (PRODUCT_FIRST_PASS_REVIEW, PRODUCT_STATUS_CHANGED, PRODUCT_AUDIT_FAILURE), for the logs only: the product's
    status comes from Get Product (§10.4)."""

    product_id: str
    update_time: int | None
    audit_event: str | None = None


@dataclass(frozen=True, slots=True)
class InventoryStatusChange:
    """Type 27: a low-stock alert on one SKU, not a feed of every change (§9.3)."""

    product_id: str
    sku_id: str
    inventory_status: str | None  # `current_inventory_status`: SUFFICIENT_STOCK, LOW_STOCK, OUT_OF_STOCK
    update_time: int | None


@dataclass(frozen=True, slots=True)
class SellerDeauthorization:
    """Type 6: the seller cancelled the authorization."""

    message: str | None


@dataclass(frozen=True, slots=True)
class UpcomingAuthorizationExpiration:
    """Type 7: sent 30 days before the authorization expires, then daily. `expiration_time` (a string of digits
    in TikTok's samples) as Unix seconds."""

    expiration_time: int | None
    message: str | None


@dataclass(frozen=True, slots=True)
class OtherEvent:
    """A topic no service acts on: only the envelope (and `data.order_id`, when sent) is read."""


OrderEventData = OrderStatusChange | RecipientAddressUpdate | PackageUpdate | CancellationStatusChange
WebhookData = (OrderEventData | ReturnStatusChange | ProductChange | InventoryStatusChange | SellerDeauthorization
               | UpcomingAuthorizationExpiration | OtherEvent)
ORDER_EVENT_DATA = (OrderStatusChange, RecipientAddressUpdate, PackageUpdate, CancellationStatusChange)


@dataclass(frozen=True, slots=True)
class Envelope:
    """What every webhook carries. `order_id` is `data.order_id` whatever the topic (None when `data` names no
    single order, as in a PACKAGE_UPDATE)."""

    type: int
    tts_notification_id: str | None
    shop_id: str
    timestamp: int
    order_id: str | None


@dataclass(frozen=True, slots=True)
class Webhook(Envelope):
    """A webhook with its `data` read for its topic."""

    data: WebhookData

    @property
    def order_ids(self) -> tuple[str, ...]:
        """The orders the webhook names: a PACKAGE_UPDATE's, or `data.order_id`."""
        if isinstance(self.data, PackageUpdate):
            return self.data.order_ids
        return (self.order_id,) if self.order_id else ()


def parse_webhook(raw: bytes | Mapping[str, Any]) -> Webhook:
    """The webhook in `raw` (the body TikTok signed, or its decoded object); raises MalformedPayload."""
    return parse_exactly(raw, _webhook)


def parse_envelope(raw: bytes | Mapping[str, Any]) -> Envelope:
    """Only the envelope of the webhook in `raw` (its `data` must be an object; its fields are not judged)."""
    return parse_exactly(raw, lambda doc: Envelope(*_envelope(doc)[:5]))


def _envelope(doc: Fields) -> tuple[int, str | None, str, int, str | None, Fields]:
    event_type = doc.integer("type", MAX_SAFE_INTEGER)
    shop_id = doc.string_id("shop_id")
    timestamp = doc.integer("timestamp", MAX_SAFE_INTEGER)
    data = doc.object("data")
    notification_id = doc.optional_token("tts_notification_id")
    return event_type, notification_id, shop_id, timestamp, data.optional_id("order_id"), data


def _webhook(doc: Fields) -> Webhook:
    event_type, notification_id, shop_id, timestamp, order_id, data = _envelope(doc)
    read = _DATA_READERS.get(event_type)
    try:
        body = read(data) if read is not None else OtherEvent()
    except MalformedPayload as exc:
        exc.event_type = event_type
        raise
    return Webhook(event_type, notification_id, shop_id, timestamp, order_id, body)


def _package_update(data: Fields) -> PackageUpdate:
    packages = tuple(UpdatedPackage(package.optional_id("package_id"), package.ids("order_id_list"))
                     for package in data.objects("package_list", required=True))
    return PackageUpdate(packages, data.optional_text("sc_type"), data.optional_time("update_time"))


_DATA_READERS: dict[int, Callable[[Fields], WebhookData]] = {
    event_types.ORDER_STATUS_CHANGE: lambda d: OrderStatusChange(
        d.id("order_id"), d.optional_text("order_status"), d.optional_time("update_time")),
    event_types.RECIPIENT_ADDRESS_UPDATE: lambda d: RecipientAddressUpdate(
        d.id("order_id"), d.optional_time("update_time")),
    event_types.PACKAGE_UPDATE: _package_update,
    event_types.CANCELLATION_STATUS_CHANGE: lambda d: CancellationStatusChange(
        d.id("order_id"), d.optional_text("cancel_status"), d.optional_time("update_time")),
    event_types.RETURN_STATUS_CHANGE: lambda d: ReturnStatusChange(
        d.id("order_id"), d.optional_text("return_status"), d.optional_time("update_time")),
    event_types.PRODUCT_STATUS_CHANGE: lambda d: ProductChange(
        d.id("product_id"), d.optional_time("update_time"), d.optional_text("status") or None),
    event_types.PRODUCT_INFORMATION_CHANGE: lambda d: ProductChange(d.id("product_id"), d.optional_time("update_time")),
    event_types.PRODUCT_CREATION: lambda d: ProductChange(d.id("product_id"), d.optional_time("update_time")),
    event_types.INVENTORY_STATUS_CHANGE: lambda d: InventoryStatusChange(
        d.id("product_id"), d.id("sku_id"), d.optional_text("current_inventory_status"),
        d.optional_time("update_time")),
    event_types.SELLER_DEAUTHORIZATION: lambda d: SellerDeauthorization(d.optional_text("message")),
    event_types.UPCOMING_AUTHORIZATION_EXPIRATION: lambda d: UpcomingAuthorizationExpiration(
        d.optional_time("expiration_time"), d.optional_text("message")),
}

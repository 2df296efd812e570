"""What to tell TikTok about one OMS shipment, decided from the order as TikTok shows it (pure).

Idempotency lives here: lines TikTok already shows shipped with the same tracking number need no call; shipped
lines with another tracking number need a shipping-info update; unshipped lines need one of the two ship
endpoints, chosen by the shop's market (`choose_endpoint`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from services.store_sync.records import Shipment
from shared.tiktok.orders import AWAITING_SHIPMENT, CANCELLED, PARTIALLY_SHIPPING, LineItem, TikTokOrder

# Mark Package As Shipped works only in these markets (§8.2); elsewhere: Ship Package with the order's package ids.
MARK_MARKETS = frozenset({"US", "GB", "UK", "ES", "IE", "IT", "DE", "FR", "JP"})
SHIPPABLE = frozenset({AWAITING_SHIPMENT, PARTIALLY_SHIPPING})
Action = Literal["ship", "correct", "done", "failed", "skipped"]
Endpoint = Literal["mark_package_shipped", "ship_package"]


@dataclass(slots=True)
class ShipPlan:
    action: Action
    reason: str | None = None
    detail: str | None = None
    line_ids: list[str] = field(default_factory=list)  # the lines to ship (or to correct)
    package_ids: list[str] = field(default_factory=list)  # their packages, where TikTok has them
    partial: bool = False  # ship only `line_ids`, not the whole order


def plan_shipment(order: TikTokOrder, shipment: Shipment) -> ShipPlan:
    status = order.status
    if status in (CANCELLED, "CANCEL"):
        return ShipPlan("failed", "shipment:order_cancelled",
                        f"order {shipment.order_id} is cancelled on TikTok; do not send the parcel, or contact "
                        "the buyer")
    if not order.seller_ships:  # a missing fulfillment_type: the parser's one default (shared.tiktok.orders)
        return ShipPlan("skipped", "shipment:not_seller_shipping",
                        f"TikTok ships this order (shipping_type {order.shipping_type}, fulfillment_type "
                        f"{order.fulfillment_type}); there is no tracking number to send")
    lines = [line for line in order.line_items if not line.is_cancelled]
    if shipment.line_item_ids is not None:
        known = {line.id for line in lines}
        unknown = [i for i in shipment.line_item_ids if i not in known]
        if unknown:
            return ShipPlan("failed", "shipment:unknown_line_items",
                            f"line items {', '.join(unknown)} are not open lines of order {shipment.order_id}; "
                            f"its lines: {', '.join(sorted(known)) or '(none)'}")
        lines = [line for line in lines if line.id in shipment.line_item_ids]
    shipped = [line for line in lines if line.tracking_number]
    unshipped = [line for line in lines if not line.tracking_number]
    if not lines:
        return ShipPlan("failed", "shipment:no_open_lines", f"order {shipment.order_id} has no open lines to ship")
    if not unshipped:
        different = [line for line in shipped if _same(line.tracking_number) != _same(shipment.tracking_number)]
        if not different:
            return ShipPlan("done", detail="TikTok already shows this tracking number")
        return ShipPlan("correct", line_ids=[line.id for line in different],
                        package_ids=_packages(different), partial=len(different) < len(shipped))
    if status not in SHIPPABLE:
        return ShipPlan("failed", "shipment:order_not_shippable",
                        f"order {shipment.order_id} is {status} on TikTok; it can be shipped once it is "
                        "AWAITING_SHIPMENT")
    partial = bool(shipped) or (shipment.line_item_ids is not None and len(lines) < len(_open(order)))
    return ShipPlan("ship", line_ids=[line.id for line in unshipped], package_ids=_packages(unshipped),
                    partial=partial)


def choose_endpoint(region: str, plan: ShipPlan) -> Endpoint:
    """Mark Package As Shipped in US/UK/EU/JP (and whenever TikTok has no package yet), else Ship Package."""
    if region.upper() in MARK_MARKETS or not plan.package_ids:
        return "mark_package_shipped"
    return "ship_package"


def packages_needing_split(order: TikTokOrder, plan: ShipPlan) -> list[str]:
    """Packages that hold lines outside a partial shipment: Ship Package would ship those lines too."""
    wanted = set(plan.line_ids)
    return sorted({line.package_id for line in _open(order)
                   if line.package_id is not None and line.package_id in plan.package_ids and line.id not in wanted})


def _open(order: TikTokOrder) -> list[LineItem]:
    return [line for line in order.line_items if line.package_status != CANCELLED]


def _packages(lines: list[LineItem]) -> list[str]:
    return list(dict.fromkeys(line.package_id for line in lines if line.package_id))


def _same(tracking: str | None) -> str:
    return "".join((tracking or "").split()).upper()

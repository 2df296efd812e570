"""What to tell TikTok about one OMS shipment, decided from the order as TikTok shows it (pure).

Idempotency lives here: lines TikTok already shows shipped with the same tracking number need no call; shipped
lines with another tracking number need a shipping-info update; unshipped lines need one of the two ship
endpoints, chosen by the shop's market (`choose_endpoint`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from services.store_sync.records import Shipment

# Mark Package As Shipped works only in these markets (§8.2); elsewhere: Ship Package with the order's package ids.
MARK_MARKETS = frozenset({"US", "GB", "UK", "ES", "IE", "IT", "DE", "FR", "JP"})
SHIPPABLE = frozenset({"AWAITING_SHIPMENT", "PARTIALLY_SHIPPING"})
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


def plan_shipment(order: dict[str, Any], shipment: Shipment) -> ShipPlan:
    status = str(order.get("status", ""))
    if status in ("CANCELLED", "CANCEL"):
        return ShipPlan("failed", "shipment:order_cancelled",
                        f"order {shipment.order_id} is cancelled on TikTok; do not send the parcel, or contact "
                        "the buyer")
    if order.get("shipping_type") != "SELLER" or order.get("fulfillment_type", "FULFILLMENT_BY_SELLER") != \
            "FULFILLMENT_BY_SELLER":
        return ShipPlan("skipped", "shipment:not_seller_shipping",
                        f"TikTok ships this order (shipping_type {order.get('shipping_type')}, fulfillment_type "
                        f"{order.get('fulfillment_type')}); there is no tracking number to send")
    lines = [line for line in order.get("line_items") or []
             if line.get("package_status") != "CANCELLED" and line.get("display_status") != "CANCELLED"]
    if shipment.line_item_ids is not None:
        known = {str(line["id"]) for line in lines}
        unknown = [i for i in shipment.line_item_ids if i not in known]
        if unknown:
            return ShipPlan("failed", "shipment:unknown_line_items",
                            f"line items {', '.join(unknown)} are not open lines of order {shipment.order_id}; "
                            f"its lines: {', '.join(sorted(known)) or '(none)'}")
        lines = [line for line in lines if str(line["id"]) in shipment.line_item_ids]
    shipped = [line for line in lines if line.get("tracking_number")]
    unshipped = [line for line in lines if not line.get("tracking_number")]
    if not lines:
        return ShipPlan("failed", "shipment:no_open_lines", f"order {shipment.order_id} has no open lines to ship")
    if not unshipped:
        different = [line for line in shipped if _same(line["tracking_number"]) != _same(shipment.tracking_number)]
        if not different:
            return ShipPlan("done", detail="TikTok already shows this tracking number")
        return ShipPlan("correct", line_ids=[str(line["id"]) for line in different],
                        package_ids=_packages(different), partial=len(different) < len(shipped))
    if status not in SHIPPABLE:
        return ShipPlan("failed", "shipment:order_not_shippable",
                        f"order {shipment.order_id} is {status} on TikTok; it can be shipped once it is "
                        "AWAITING_SHIPMENT")
    partial = bool(shipped) or (shipment.line_item_ids is not None and len(lines) < len(_open(order)))
    return ShipPlan("ship", line_ids=[str(line["id"]) for line in unshipped], package_ids=_packages(unshipped),
                    partial=partial)


def choose_endpoint(region: str, plan: ShipPlan) -> Endpoint:
    """Mark Package As Shipped in US/UK/EU/JP (and whenever TikTok has no package yet), else Ship Package."""
    if region.upper() in MARK_MARKETS or not plan.package_ids:
        return "mark_package_shipped"
    return "ship_package"


def packages_needing_split(order: dict[str, Any], plan: ShipPlan) -> list[str]:
    """Packages that hold lines outside a partial shipment: Ship Package would ship those lines too."""
    wanted = set(plan.line_ids)
    return sorted({str(line.get("package_id")) for line in _open(order)
                   if line.get("package_id") in plan.package_ids and str(line["id"]) not in wanted})


def _open(order: dict[str, Any]) -> list[dict[str, Any]]:
    return [line for line in order.get("line_items") or [] if line.get("package_status") != "CANCELLED"]


def _packages(lines: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(str(line["package_id"]) for line in lines if line.get("package_id")))


def _same(tracking: str) -> str:
    return "".join(str(tracking).split()).upper()

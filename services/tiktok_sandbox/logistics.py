"""Seller shipping over the World (§8): delivery options, carriers, Mark Package As Shipped, Ship Package and
tracking corrections. Pure functions that mutate the world and raise `ApiError` like TikTok would.

Codes: 21008111 order / package / warehouse not of this shop (the doc's "not owned by this seller", reused for
unknown warehouses); 21008116 unknown delivery option; 21008106 wrong market; 21011041 cancelled; 21011004 not
seller-shipped or not yet shippable; 21011006 order already shipped; 21008099 package / line already shipped;
21011048 bad or missing `order_line_item_ids`; 21011022 bad tracking number or provider; 21011043 not shipped yet;
21011049 shipped more than 72 h ago (US), 21011050 the same outside the US (DOCS: "within a certain number of
hours"; the 72 h used here is an assumption); 21011051 shipping info already updated once; 36009004 malformed body;
a "system busy" code from the Ship specs (e.g. 21001003) while the `fulfillment_busy` fault lasts.

Assumptions (no source): Ship Package answering 21008106 in the US/UK/EU/JP markets (the docs give 21008106 only
for Mark Package As Shipped outside them); `seller_skus` in Search Products matching exactly.
"""

from __future__ import annotations

import re
from typing import Any

from services.tiktok_sandbox.api import ApiError
from services.tiktok_sandbox.world import MARK_MARKETS, Shop, World, is_shipped

SHIPPABLE = ("AWAITING_SHIPMENT", "PARTIALLY_SHIPPING")
SHIPPED = ("AWAITING_COLLECTION", "IN_TRANSIT", "DELIVERED", "COMPLETED")
RETRACK_WINDOW_S = 72 * 3600
TRACKING_RE = re.compile(r"[A-Za-z0-9-]{6,}")


def delivery_options(world: World, shop: Shop, warehouse_id: str) -> list[dict[str, Any]]:
    if not any(w["id"] == warehouse_id for w in world.warehouses[shop.id]):
        raise ApiError(21008111, f"warehouse {warehouse_id} does not exist in this shop")
    return world.delivery_options.get(warehouse_id, [])  # a return warehouse has none


def shipping_providers(world: World, shop: Shop, delivery_option_id: str) -> list[dict[str, str]]:
    own = {o["id"] for w in world.sales_warehouses(shop.id) for o in world.delivery_options.get(w["id"], [])}
    if delivery_option_id not in own:
        raise ApiError(21008116, f"no subscription for delivery option {delivery_option_id}")
    return world.shipping_providers[delivery_option_id]


def mark_package_shipped(world: World, shop: Shop, order_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST /fulfillment/202309/orders/{order_id}/packages: ships the given lines (default: all live ones) in a
    new package; returns the response `data`."""
    order = _own_order(world, shop, order_id)
    if shop.region not in MARK_MARKETS:
        raise ApiError(21008106, "This interface cannot be used in this region")
    _check_shippable(order)
    ids = body.get("order_line_item_ids")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
        raise ApiError(36009004, "order_line_item_ids must be a list of strings")
    by_id = {line["id"]: line for line in order["line_items"]}
    if ids:
        if unknown := [i for i in ids if i not in by_id]:
            raise ApiError(21011048, f"order_line_item_ids contains unknown ids: {', '.join(unknown)}")
        lines = [by_id[i] for i in dict.fromkeys(ids)]
        if any(line["display_status"] == "CANCELLED" for line in lines):
            raise ApiError(21011041, "Cannot complete the operation when order is cancelled")
        if any(is_shipped(line) for line in lines):
            raise ApiError(21008099, "Package has been shipped")
    else:
        lines = [line for line in order["line_items"] if line["display_status"] != "CANCELLED"]
        if any(is_shipped(line) for line in lines):
            raise ApiError(21011048, "Some lines are already shipped: specify order_line_item_ids")
    provider, tracking = _carrier(world, order, body)
    package_id = world.new_package_id()
    world.ship_lines(order, lines, package_id, provider, tracking)
    _journal(world, "mark_package_shipped", order, package_id, lines, provider, tracking)
    warning = "tracking number matches no provider" if shop.region == "US" and tracking.startswith("X") else ""
    return {"order_id": order["id"], "order_line_item_ids": [line["id"] for line in lines],
            "package_id": package_id, "warning": {"message": warning}}


def ship_package(world: World, shop: Shop, package_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST /fulfillment/202309/packages/{package_id}/ship with `self_shipment`; returns the shipped order."""
    order = _package_order(world, shop, package_id)
    if shop.region in MARK_MARKETS:
        raise ApiError(21008106, "This interface cannot be used in this region")
    lines = [line for line in _package_lines(order, package_id) if line["display_status"] != "CANCELLED"]
    _check_live(order)
    if any(is_shipped(line) for line in lines):
        raise ApiError(21008099, "Package has been shipped")
    _check_status(order)
    handover = body.get("handover_method")
    if handover is not None and handover not in ("PICKUP", "DROP_OFF"):
        raise ApiError(36009004, "handover_method must be PICKUP or DROP_OFF")
    self_shipment = body.get("self_shipment")
    if not isinstance(self_shipment, dict):
        raise ApiError(21011022, "Invalid tracking number or provider ID: self_shipment is required")
    provider, tracking = _carrier(world, order, self_shipment)
    world.ship_lines(order, lines, package_id, provider, tracking)
    _journal(world, "ship_package", order, package_id, lines, provider, tracking)
    return order


def update_shipping_info(world: World, shop: Shop, body: dict[str, Any], *, order_id: str | None = None,
                         package_id: str | None = None) -> dict[str, Any]:
    """The order-level or package-level tracking correction; returns the order."""
    if package_id is not None:
        order = _package_order(world, shop, package_id)
        lines = [line for line in _package_lines(order, package_id) if is_shipped(line)]
    else:
        order = _own_order(world, shop, str(order_id))
        lines = [line for line in order["line_items"] if is_shipped(line)]
    if not lines:
        raise ApiError(21011043, "The package has not been shipped yet")
    if world.clock() - min(int(line.get("rts_time") or 0) for line in lines) > RETRACK_WINDOW_S:
        if shop.region == "US":
            raise ApiError(21011049, "Shipping info can only be updated within 72 hours of shipping")
        raise ApiError(21011050, "Shipping info can only be updated within a certain number of hours")
    packages = list(dict.fromkeys(line["package_id"] for line in lines))
    if any(p in world.retracked_packages for p in packages):
        raise ApiError(21011051, "Shipping info can only be updated once")
    provider, tracking = _carrier(world, order, body)
    world.retrack_lines(order, lines, provider, tracking)
    world.retracked_packages.update(packages)
    for pid in packages:
        _journal(world, "update_shipping_info", order, pid, [x for x in lines if x["package_id"] == pid],
                 provider, tracking)
    return order


# ---- checks ------------------------------------------------------------------------------------------------
def _own_order(world: World, shop: Shop, order_id: str) -> dict[str, Any]:
    order = world.orders.get(order_id)
    if order is None or order["_shop_id"] != shop.id:
        raise ApiError(21008111, f"order {order_id} is not owned by this seller")
    return order


def _package_order(world: World, shop: Shop, package_id: str) -> dict[str, Any]:
    for order in world.orders.values():
        if order["_shop_id"] == shop.id and any(p["id"] == package_id for p in order["packages"]):
            return order
    raise ApiError(21008111, f"package {package_id} is not owned by this seller")


def _package_lines(order: dict[str, Any], package_id: str) -> list[dict[str, Any]]:
    return [line for line in order["line_items"] if line["package_id"] == package_id]


def _check_live(order: dict[str, Any]) -> None:
    if order["status"] == "CANCELLED":
        raise ApiError(21011041, "Cannot complete the operation when order is cancelled")
    if order["shipping_type"] != "SELLER" or order["fulfillment_type"] != "FULFILLMENT_BY_SELLER":
        raise ApiError(21011004, "The order is not shipped by the seller "
                                 f"({order['fulfillment_type']}, shipping_type {order['shipping_type']})")


def _check_status(order: dict[str, Any]) -> None:
    if order["status"] in SHIPPED:
        raise ApiError(21011006, "These orders are already shipped")
    if order["status"] not in SHIPPABLE:
        raise ApiError(21011004, f"The order cannot be shipped in status {order['status']}")


def _check_shippable(order: dict[str, Any]) -> None:
    _check_live(order)
    _check_status(order)


def _carrier(world: World, order: dict[str, Any], body: dict[str, Any]) -> tuple[dict[str, str], str]:
    """The provider (one of the order's delivery option's) and a plausible tracking number, or 21011022."""
    tracking, provider_id = body.get("tracking_number"), body.get("shipping_provider_id")
    providers = {p["id"]: p for p in world.shipping_providers.get(order["delivery_option_id"], [])}
    if (not isinstance(tracking, str) or not TRACKING_RE.fullmatch(tracking)
            or not isinstance(provider_id, str) or provider_id not in providers):
        raise ApiError(21011022, "Invalid tracking number or provider ID")
    return providers[provider_id], tracking


def _journal(world: World, endpoint: str, order: dict[str, Any], package_id: str, lines: list[dict[str, Any]],
             provider: dict[str, str], tracking: str) -> None:
    world.shipments.append({
        "endpoint": endpoint, "shop_id": order["_shop_id"], "order_id": order["id"], "package_id": package_id,
        "line_item_ids": [line["id"] for line in lines], "tracking_number": tracking,
        "shipping_provider_id": provider["id"], "shipping_provider_name": provider["name"], "at": world.clock()})

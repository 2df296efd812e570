"""One OMS shipment → TikTok: read the order, plan, resolve the carrier, call the right endpoint, say what happened.

Each call is retried by the TikTok client (its policy is store sync's, `retry.store_sync_policy`); what its retries
did not get past (429/5xx/"system busy"/timeouts/expired tokens) propagates, and the feed records the shipment as
`shipment:tiktok_unavailable`. A write retried after a timeout may have landed on an earlier attempt: TikTok then
answers "already shipped" (or "already corrected"), and the order is re-read to tell our own write from another.
Every other outcome is a `SyncResult`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.store_sync.carriers import CarrierBook, UnknownCarrier
from services.store_sync.records import Shipment
from services.store_sync.results import Status, SyncResult
from services.store_sync.retry import UNAVAILABLE
from services.store_sync.shipment_plan import ShipPlan, choose_endpoint, packages_needing_split, plan_shipment
from shared.logging import get_logger
from shared.stores.table import StoreTable
from shared.stores.tokens import StoreUnavailable, TokenKeeper
from shared.tiktok.client import TikTokClient
from shared.tiktok.errors import InvalidPath, NotFound, TikTokError
from shared.tiktok.models import ShippingProvider, ShopAuth
from shared.tiktok.orders import TikTokOrder

log = get_logger("store_sync.shipments")

WRONG_REGION = 21008106
ALREADY_SHIPPED = frozenset({21008099, 11006021, 21011006, 21011020, 21042056, 21011040})
BAD_TRACKING = frozenset({21011022, 11028006, 21004012, 21004015, 21004016, 21022032, 21011025, 21034012})
CANCELLED = frozenset({21011041, 21011042, 25001010})
NOT_SELLER_SHIPPED = 21011004
UPDATE_WINDOWS = {21011049: "within 72 h of shipping (US)",
                  21011050: "only within the number of hours TikTok allows in this market"}
UPDATE_LIMIT = frozenset({21011051, 21011052})


class ShipmentSyncer:
    def __init__(self, table: StoreTable, tokens: TokenKeeper, client: TikTokClient, carriers: CarrierBook) -> None:
        self.table = table
        self.tokens = tokens
        self.client = client
        self.carriers = carriers
        self.applied: dict[str, str] = {}  # shipment_id → tracking number TikTok accepted

    def remember(self, shipment_id: str, tracking_number: str) -> None:
        """A shipment applied earlier (restored from `sync.results`)."""
        self.applied[shipment_id] = tracking_number

    async def sync(self, shipment: Shipment) -> SyncResult:
        ids: dict[str, Any] = {"shipment_id": shipment.shipment_id, "shop_id": shipment.shop_id,
                               "order_id": shipment.order_id, "carrier": shipment.carrier,
                               "tracking_number": shipment.tracking_number,
                               "line_item_ids": list(shipment.line_item_ids) if shipment.line_item_ids else None}

        def result(status: Status, reason: str | None = None, detail: str | None = None, code: int | None = None,
                   **more: Any) -> SyncResult:
            return SyncResult("shipment", shipment.key, status, reason, detail, code, ids=ids | more)

        store = self.table.stores.get(shipment.shop_id)
        if store is None or not store.is_active:
            return result("skipped", "shipment:store_not_linked",
                          f"shop {shipment.shop_id} is not linked: run `shopsync stores link`")
        if not store.auto_sync_shipments:
            return result("skipped", "shipment:store_sync_off",
                          f"shipment sync is off for {store.nickname}: run `shopsync stores set {store.shop_id} "
                          "--auto-sync-shipments on`")
        if self.applied.get(shipment.shipment_id) == shipment.tracking_number:
            return result("applied", detail="shipment already applied (same shipment_id)", endpoint=None)
        try:
            auth = await self.tokens.shop_auth(shipment.shop_id)
            order = await self._order(auth, shipment.order_id)
        except StoreUnavailable:
            return result("skipped", "shipment:store_not_linked", f"shop {shipment.shop_id} is not linked")
        except UNAVAILABLE:
            raise
        except TikTokError as exc:
            return _api_failure(exc, "order detail", result)
        if order is None:
            return result("failed", "shipment:order_not_found",
                          f"TikTok has no order {shipment.order_id} in shop {shipment.shop_id}")
        plan = plan_shipment(order, shipment)
        if plan.action == "done":
            self.remember(shipment.shipment_id, shipment.tracking_number)
            return result("applied", detail=plan.detail, endpoint=None)
        if plan.action in ("failed", "skipped"):
            return result(plan.action, plan.reason, plan.detail)
        try:
            provider = await self.carriers.resolve(auth, order.delivery_option_id or "", shipment.carrier)
        except UnknownCarrier as exc:
            return result("failed", "shipment:unknown_carrier", str(exc), valid_carriers=exc.valid)
        except UNAVAILABLE:
            raise
        except TikTokError as exc:
            return _api_failure(exc, "shipping providers", result)
        ids["shipping_provider_id"] = provider.id
        try:
            endpoint, data = await self._apply(auth, store.region, order, plan, shipment, provider)
        except UNAVAILABLE:
            raise
        except _Refused as exc:
            return result("failed", exc.reason, exc.detail)
        except TikTokError as exc:
            return await self._rejected(auth, shipment, exc, result)
        self.remember(shipment.shipment_id, shipment.tracking_number)
        warning = (data.get("warning") or {}).get("message") if isinstance(data.get("warning"), dict) else None
        return result("applied", detail=f"sent with {endpoint}", endpoint=endpoint,
                      package_ids=[p for p in [data.get("package_id"), *plan.package_ids] if p] or None,
                      shipped_line_item_ids=plan.line_ids, warning=warning or None)

    async def _order(self, auth: ShopAuth, order_id: str) -> TikTokOrder | None:
        try:
            orders = await self.client.get_order_detail(auth, [order_id])
        except NotFound:
            return None
        return orders[0] if orders else None

    async def _apply(self, auth: ShopAuth, region: str, order: TikTokOrder, plan: ShipPlan, shipment: Shipment,
                     provider: ShippingProvider) -> tuple[str, dict[str, Any]]:
        """Ship (trying the other endpoint on 21008106) or correct the tracking number; (endpoint, data)."""
        tracking = shipment.tracking_number
        if plan.action == "correct":
            return "update_shipping_info", await self._correct(auth, order, plan, tracking, provider)
        first = choose_endpoint(region, plan)
        order_ = [first, "ship_package" if first == "mark_package_shipped" else "mark_package_shipped"]
        for n, endpoint in enumerate(order_):
            try:
                if endpoint == "mark_package_shipped":
                    data = await self.client.mark_package_shipped(
                        auth, shipment.order_id, tracking_number=tracking, shipping_provider_id=provider.id,
                        line_item_ids=plan.line_ids if plan.partial else None)
                    return endpoint, data
                if not plan.package_ids:
                    raise _Refused("shipment:rejected:21008106", "this market needs Ship Package, but TikTok shows "
                                                                 "no package for the order yet")
                if plan.partial and (extra := packages_needing_split(order, plan)):
                    raise _Refused("shipment:package_split_required",
                                   f"packages {', '.join(extra)} also hold lines outside this shipment; split the "
                                   "package on TikTok Seller Center first")
                for package_id in plan.package_ids:
                    await self.client.ship_package(auth, package_id, tracking_number=tracking,
                                                   shipping_provider_id=provider.id)
                return endpoint, {}
            except TikTokError as exc:
                if exc.code != WRONG_REGION or n == 1 or isinstance(exc, UNAVAILABLE):
                    raise
                log.info("ship_endpoint_wrong_region", order_id=shipment.order_id, tried=endpoint)
        raise AssertionError("unreachable")

    async def _correct(self, auth: ShopAuth, order: TikTokOrder, plan: ShipPlan, tracking: str,
                       provider: ShippingProvider) -> dict[str, Any]:
        packages = {package.id for package in order.packages}
        if len(packages) <= 1 or not plan.package_ids:
            return await self.client.update_shipping_info(auth, order_id=order.id, tracking_number=tracking,
                                                          shipping_provider_id=provider.id)
        for package_id in plan.package_ids:
            await self.client.update_shipping_info(auth, package_id=package_id, tracking_number=tracking,
                                                   shipping_provider_id=provider.id)
        return {}

    async def _rejected(self, auth: ShopAuth, shipment: Shipment, exc: TikTokError,
                        result: Callable[..., SyncResult]) -> SyncResult:
        code = exc.code
        if isinstance(exc, InvalidPath):
            return _api_failure(exc, "shipping", result)
        if code in ALREADY_SHIPPED:
            order = await self._order(auth, shipment.order_id)  # shipped meanwhile, perhaps by this very shipment
            if order is not None and plan_shipment(order, shipment).action == "done":
                self.remember(shipment.shipment_id, shipment.tracking_number)
                return result("applied", detail="TikTok already shows this tracking number", endpoint=None)
            return result("failed", "shipment:already_shipped", f"TikTok says the order is already shipped: "
                                                                f"{exc.message}", code)
        if code in BAD_TRACKING:
            return result("failed", "shipment:invalid_tracking",
                          f"TikTok rejected tracking number {shipment.tracking_number!r} with carrier "
                          f"{shipment.carrier!r}: {exc.message}", code)
        if code in CANCELLED:
            return result("failed", "shipment:order_cancelled", f"the order is cancelled on TikTok: {exc.message}",
                          code)
        if code == NOT_SELLER_SHIPPED:
            return result("skipped", "shipment:not_seller_shipping", exc.message, code)
        if code in UPDATE_WINDOWS:
            return result("failed", "shipment:update_window_passed",
                          f"the tracking number can only be corrected {UPDATE_WINDOWS[code]}: {exc.message}", code)
        if code in UPDATE_LIMIT:
            order = await self._order(auth, shipment.order_id)  # corrected meanwhile, perhaps by this very shipment
            if order is not None and plan_shipment(order, shipment).action == "done":
                self.remember(shipment.shipment_id, shipment.tracking_number)
                return result("applied", detail="TikTok already shows this tracking number", endpoint=None)
            return result("failed", "shipment:update_limit_reached",
                          "TikTok allows the tracking number to be corrected only once", code)
        return result("failed", f"shipment:rejected:{code}", exc.message, code)


def _api_failure(exc: TikTokError, call: str, result: Callable[..., SyncResult]) -> SyncResult:
    """A permanent TikTok error outside the shipping decision; an invalid path is a shopsync bug to report."""
    if isinstance(exc, InvalidPath):
        return result("failed", "shipment:invalid_request",
                      f"TikTok does not know the {call} path shopsync called (code {exc.code}): a bug in shopsync; "
                      f"report it with request id {exc.request_id}", exc.code)
    return result("failed", f"shipment:rejected:{exc.code}", f"{call}: {exc.message}", exc.code)


class _Refused(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail

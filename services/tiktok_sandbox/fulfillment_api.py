"""Seller shipping and inventory paths (§8, §9): the signed Open API routes and their `/sandbox/...` control
routes (journals of applied writes, direct stock and product edits).

Webhook 5 carries an audit event in `data.status` (`stock.audit_event`) and `product_id` as a JSON number, as
TikTok's sample does. Assumption (docs/sandbox.md): webhook 15's `changed_fields` naming `seller_sku`.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.tiktok_sandbox import logistics, stock
from services.tiktok_sandbox.api import ApiError, OpenApi, envelope
from services.tiktok_sandbox.control import _bad, push_order_status
from services.tiktok_sandbox.pusher import WebhookPusher
from services.tiktok_sandbox.world import Grant, Product, Shop, Sku, World, WorldError

PRODUCT_STATUS_CHANGE = 5
PRODUCT_INFORMATION_CHANGE = 15
PRODUCT_CREATION = 16


class FulfillmentApi:
    def __init__(self, world: World, api: OpenApi, pusher: WebhookPusher) -> None:
        self.world, self.api, self.pusher = world, api, pusher

    def routes(self) -> list[Route]:
        signed = self.api._signed
        return [
            Route("/logistics/202309/warehouses/{warehouse_id}/delivery_options", signed(self.delivery_options),
                  methods=["GET"]),
            Route("/logistics/202309/delivery_options/{delivery_option_id}/shipping_providers",
                  signed(self.shipping_providers), methods=["GET"]),
            Route("/fulfillment/202309/orders/{order_id}/packages", signed(self.mark_shipped), methods=["POST"]),
            Route("/fulfillment/202309/packages/{package_id}/ship", signed(self.ship_package), methods=["POST"]),
            Route("/fulfillment/202309/orders/{order_id}/shipping_info/update", signed(self.update_shipping_info),
                  methods=["POST"]),
            Route("/fulfillment/202309/packages/{package_id}/shipping_info/update",
                  signed(self.update_shipping_info), methods=["POST"]),
            Route("/product/202309/products/search", signed(self.search_products), methods=["POST"]),
            Route("/product/202309/products/{product_id}", signed(self.get_product), methods=["GET"]),
            Route("/product/202309/inventory/search", signed(self.search_inventory), methods=["POST"]),
            Route("/product/202309/products/{product_id}/inventory/update", signed(self.update_inventory),
                  methods=["POST"]),
            # control
            Route("/sandbox/shipments", self.shipments, methods=["GET"]),
            Route("/sandbox/inventory", self.inventory, methods=["GET"]),
            Route("/sandbox/inventory", self.set_inventory, methods=["POST"]),
            Route("/sandbox/inventory/updates", self.inventory_updates, methods=["GET"]),
            Route("/sandbox/products", self.create_product, methods=["POST"]),
            Route("/sandbox/products/{product_id}", self.edit_product, methods=["POST"]),
            Route("/sandbox/orders/{order_id}/rts_time", self.age_shipment, methods=["POST"]),
        ]

    # ---- shipping (Open API) -----------------------------------------------------------------------------
    async def delivery_options(self, request: Request, _: Grant, shop: Shop, __: bytes) -> Response:
        options = logistics.delivery_options(self.world, shop, request.path_params["warehouse_id"])
        return envelope({"delivery_options": options})

    async def shipping_providers(self, request: Request, _: Grant, shop: Shop, __: bytes) -> Response:
        providers = logistics.shipping_providers(self.world, shop, request.path_params["delivery_option_id"])
        return envelope({"shipping_providers": providers})

    async def mark_shipped(self, request: Request, _: Grant, shop: Shop, body: bytes) -> Response:
        self.api.faults.take_fulfillment_busy()
        order_id = request.path_params["order_id"]
        data = logistics.mark_package_shipped(self.world, shop, order_id, _body(body))
        push_order_status(self.pusher, self.world.orders[order_id])
        return envelope(data)

    async def ship_package(self, request: Request, _: Grant, shop: Shop, body: bytes) -> Response:
        self.api.faults.take_fulfillment_busy()
        order = logistics.ship_package(self.world, shop, request.path_params["package_id"], _body(body))
        push_order_status(self.pusher, order)
        return envelope({})

    async def update_shipping_info(self, request: Request, _: Grant, shop: Shop, body: bytes) -> Response:
        self.api.faults.take_fulfillment_busy()
        logistics.update_shipping_info(self.world, shop, _body(body), order_id=request.path_params.get("order_id"),
                                       package_id=request.path_params.get("package_id"))
        return envelope({})

    # ---- products and inventory (Open API) -----------------------------------------------------------------
    async def search_products(self, request: Request, _: Grant, shop: Shop, body: bytes) -> Response:
        return envelope(stock.search_products(self.world, shop, dict(request.query_params), _body(body)))

    async def get_product(self, request: Request, _: Grant, shop: Shop, __: bytes) -> Response:
        return envelope(stock.get_product(self.world, shop, request.path_params["product_id"]))

    async def search_inventory(self, request: Request, _: Grant, shop: Shop, body: bytes) -> Response:
        return envelope(stock.search_inventory(self.world, shop, _body(body)))

    async def update_inventory(self, request: Request, _: Grant, shop: Shop, body: bytes) -> Response:
        data, applied = stock.update_inventory(self.world, shop, request.path_params["product_id"], _body(body),
                                               refuse_zero=self.api.config.refuse_zero_quantity)
        threshold = self.api.config.low_stock_threshold
        for product, sku in applied:
            if sku.total <= threshold:
                self._push_stock(product, sku)
        return envelope(data)

    def _push_stock(self, product: Product, sku: Sku) -> None:
        data = stock.inventory_alert(product, sku, self.api.config.low_stock_threshold)
        self.pusher.push(stock.INVENTORY_STATUS_CHANGE, product.shop_id, data)

    # ---- control -------------------------------------------------------------------------------------------
    async def shipments(self, _: Request) -> Response:
        return JSONResponse(self.world.shipments)

    async def inventory(self, request: Request) -> Response:
        shop_id = request.query_params.get("shop_id")
        if shop_id is not None and shop_id not in self.world.shops:
            return _bad(WorldError(f"unknown shop_id {shop_id!r}"), 404)
        shops = [shop_id] if shop_id else list(self.world.products)
        return JSONResponse({sid: [stock.inventory_row(p, k) for p in self.world.products[sid] for k in p.skus]
                             for sid in shops})

    async def inventory_updates(self, _: Request) -> Response:
        return JSONResponse(self.world.inventory_updates)

    async def set_inventory(self, request: Request) -> Response:
        """The seller edits stock on TikTok: webhook 27 when the SKU is low (or when `webhook` is true)."""
        try:
            doc = await _json(request)
            product, sku = stock.set_stock(self.world, str(doc.get("shop_id")), str(doc.get("sku_id")),
                                           str(doc.get("warehouse_id")), doc.get("quantity"))
        except (WorldError, ValueError) as exc:
            return _bad(exc)
        if doc.get("webhook") or sku.total <= self.api.config.low_stock_threshold:
            self._push_stock(product, sku)
        return JSONResponse(stock.inventory_row(product, sku))

    async def create_product(self, request: Request) -> Response:
        try:
            product = stock.create_product(self.world, await _json(request))
        except (WorldError, ValueError) as exc:
            return _bad(exc)
        # a JSON number, as in TikTok's sample (DOCS `16-product-creation.md`); other webhooks send strings
        self.pusher.push(PRODUCT_CREATION, product.shop_id,
                         {"product_id": int(product.id), "update_time": product.update_time})
        return JSONResponse(self._product(product), status_code=201)

    async def edit_product(self, request: Request) -> Response:
        product = self.world.product(request.path_params["product_id"])
        if product is None:
            return _bad(WorldError(f"unknown product {request.path_params['product_id']!r}"), 404)
        try:
            audit_event, skus_changed = stock.edit_product(self.world, product, await _json(request))
        except (WorldError, ValueError) as exc:
            return _bad(exc)
        if audit_event:  # an audit event, not the product status; the id a JSON number (DOCS sample)
            self.pusher.push(PRODUCT_STATUS_CHANGE, product.shop_id, {
                "product_id": int(product.id), "status": audit_event, "suspended_reason": "",
                "update_time": product.update_time})
        if skus_changed:
            self.pusher.push(PRODUCT_INFORMATION_CHANGE, product.shop_id, {
                "product_id": product.id, "changed_fields": ["seller_sku"], "update_time": product.update_time})
        return JSONResponse(self._product(product))

    async def age_shipment(self, request: Request) -> Response:
        order_id = request.path_params["order_id"]
        try:
            doc = await _json(request)
            rts_time = doc.get("rts_time")
            if not isinstance(rts_time, int) or isinstance(rts_time, bool):
                raise WorldError("rts_time must be a Unix time in seconds")
            order = self.world.age_shipment(order_id, rts_time)
        except (WorldError, ValueError) as exc:
            return _bad(exc, 404 if "unknown order" in str(exc) else 400)
        return JSONResponse(self.world.public_order(order) | {"shop_id": order["_shop_id"]})

    def _product(self, product: Product) -> dict[str, Any]:
        return stock.product_view(product, self.world.shop(product.shop_id)) | {"shop_id": product.shop_id}


def _body(body: bytes) -> dict[str, Any]:
    """A signed call's JSON object body (empty means `{}`), else 36009004."""
    try:
        doc = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        raise ApiError(36009004, "the body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ApiError(36009004, "the body must be a JSON object")
    return doc


async def _json(request: Request) -> dict[str, Any]:
    body = await request.body()
    doc = orjson.loads(body) if body.strip() else {}
    if not isinstance(doc, dict):
        raise WorldError("body must be a JSON object")
    return doc

"""`/sandbox/...`: the JSON control API tests and demos use to drive the sandbox (names are a public contract)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.tiktok_sandbox.api import Faults, OpenApi
from services.tiktok_sandbox.pusher import WebhookPusher
from services.tiktok_sandbox.world import World, WorldError

ORDER_STATUS_CHANGE = 1
PACKAGE_UPDATE = 4
SELLER_DEAUTHORIZATION = 6
WEBHOOK_STATUS = {"CANCELLED": "CANCEL"}  # the webhook doc spells it CANCEL; the Order API says CANCELLED
MAX_BULK_ORDERS = 100_000


class Control:
    def __init__(self, world: World, api: OpenApi, pusher: WebhookPusher, faults: Faults) -> None:
        self.world, self.api, self.pusher, self.faults = world, api, pusher, faults
        self.traffic: list[asyncio.Task[None]] = []

    def routes(self) -> list[Route]:
        return [
            Route("/sandbox/orders", self.create_order, methods=["POST"]),
            Route("/sandbox/orders/bulk", self.create_orders, methods=["POST"]),
            Route("/sandbox/orders/{order_id}", self.get_order, methods=["GET"]),
            Route("/sandbox/orders/{order_id}/status", self.move_order, methods=["POST"]),
            Route("/sandbox/packages", self.repack, methods=["POST"]),
            Route("/sandbox/state", self.state, methods=["GET"]),
            Route("/sandbox/faults", self.set_faults, methods=["POST"]),
            Route("/sandbox/faults", self.clear_faults, methods=["DELETE"]),
            Route("/sandbox/traffic", self.start_traffic, methods=["POST"]),
            Route("/sandbox/webhooks", self.webhooks, methods=["GET"]),
            Route("/sandbox/calls", self.calls, methods=["GET"]),
            Route("/sandbox/config", self.set_config, methods=["POST"]),
            Route("/sandbox/shops/{shop_id}/tokens/expire", self.expire_tokens, methods=["POST"]),
            Route("/sandbox/shops/{shop_id}/deauthorize", self.deauthorize, methods=["POST"]),
        ]

    async def _json(self, request: Request) -> dict[str, Any]:
        body = await request.body()
        doc = orjson.loads(body) if body.strip() else {}
        if not isinstance(doc, dict):
            raise WorldError("body must be a JSON object")
        return doc

    def push_status(self, order: dict[str, Any]) -> None:
        push_order_status(self.pusher, order)

    async def create_order(self, request: Request) -> Response:
        try:
            order = self.world.create_order(await self._json(request))
        except (WorldError, ValueError, TypeError) as exc:
            return _bad(exc)
        self.push_status(order)
        return JSONResponse(self.world.public_order(order) | {"shop_id": order["_shop_id"]}, status_code=201)

    async def create_orders(self, request: Request) -> Response:
        """`{"shop_id"?, "count", "mix"?}`: `count` orders at once, no webhooks (a load driver pushes their
        ORDER_STATUS_CHANGE itself); with `"mix": true` the traffic mix, else awaiting shipment from the shop's
        default warehouse. Answers each order's webhook `data` and how it ships."""
        try:
            doc = await self._json(request)
            count = doc.get("count")
            if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_BULK_ORDERS:
                raise WorldError(f"count must be an integer from 1 to {MAX_BULK_ORDERS}")
            shop_id = doc.get("shop_id")
            rng = random.Random(self.world.rng.random())
            orders = [self.world.create_order(traffic_spec(self.world, rng, shop_id) if doc.get("mix")
                                              else {"shop_id": shop_id}) for _ in range(count)]
        except (WorldError, ValueError, TypeError) as exc:
            return _bad(exc)
        return JSONResponse({"created": len(orders), "orders": [
            order_status_data(o) | {"shop_id": o["_shop_id"], "warehouse_id": o["warehouse_id"],
                                    "shipping_type": o["shipping_type"], "fulfillment_type": o["fulfillment_type"]}
            for o in orders]}, status_code=201)

    async def get_order(self, request: Request) -> Response:
        try:
            order = self.world.order(request.path_params["order_id"])
        except WorldError as exc:
            return _bad(exc, 404)
        return JSONResponse(self.world.public_order(order) | {"shop_id": order["_shop_id"]})

    async def move_order(self, request: Request) -> Response:
        try:
            doc = await self._json(request)
            order = self.world.move_order(request.path_params["order_id"], doc.get("status", ""))
        except (WorldError, ValueError) as exc:
            return _bad(exc, 404 if "unknown order" in str(exc) else 400)
        self.push_status(order)
        return JSONResponse(self.world.public_order(order) | {"shop_id": order["_shop_id"]})

    async def repack(self, request: Request) -> Response:
        """Split one order's lines into two packages, or combine orders into one package, as TikTok does when a
        buyer, seller or TikTok changes packing; pushes webhook 4 PACKAGE_UPDATE (no `order_id`: a
        `package_list` of `{package_id, order_id_list}`, DOCS `4-package-update.md`). `update_time` stays: the
        docs date only status changes with it."""
        try:
            doc = await self._json(request)
            sc_type = str(doc.get("sc_type") or "")
            orders = [self.world.order(str(oid)) for oid in doc.get("order_ids") or []]
            if sc_type not in ("SPLIT", "COMBINE") or not orders or (sc_type == "SPLIT" and len(orders) != 1):
                raise WorldError("give sc_type SPLIT with one order id, or COMBINE with order ids")
        except (WorldError, ValueError) as exc:
            return _bad(exc, 404 if "unknown order" in str(exc) else 400)
        packages: list[dict[str, Any]] = []
        if sc_type == "COMBINE":
            package_id = self.world.new_package_id()
            for order in orders:
                _pack(order, order["line_items"], package_id)
            packages.append({"package_id": package_id, "order_id_list": [o["id"] for o in orders]})
        else:
            lines = orders[0]["line_items"]
            half = max(1, len(lines) // 2)
            for part in (lines[:half], lines[half:]):
                if part:
                    package_id = self.world.new_package_id()
                    _pack(orders[0], part, package_id)
                    packages.append({"package_id": package_id, "order_id_list": [orders[0]["id"]]})
        for order in orders:
            order["packages"] = [{"id": pid} for pid in dict.fromkeys(line["package_id"] for line in
                                                                       order["line_items"] if line["package_id"])]
        self.pusher.push(PACKAGE_UPDATE, orders[0]["_shop_id"], {
            "sc_type": sc_type, "role_type": "ROLE_SELLER", "package_list": packages,
            "update_time": int(self.world.clock())})
        return JSONResponse({"package_list": packages})

    async def state(self, _: Request) -> Response:
        return JSONResponse(self.world.state())

    async def set_faults(self, request: Request) -> Response:
        try:
            doc = await self._json(request)
        except (WorldError, ValueError) as exc:
            return _bad(exc)
        if "rate_limit_storm_s" in doc:
            self.faults.storm_until = time.time() + float(doc["rate_limit_storm_s"])
        if "error_5xx_ratio" in doc:
            self.faults.error_5xx_ratio = float(doc["error_5xx_ratio"])
        if doc.get("expire_tokens"):
            self.world.expire_tokens()
        if "drop_webhooks" in doc:
            self.pusher.drop = bool(doc["drop_webhooks"])
        if "fulfillment_busy" in doc:
            self.faults.fulfillment_busy = int(doc["fulfillment_busy"])
            self.faults.fulfillment_busy_code = int(doc.get("fulfillment_busy_code", 21001003))
        return JSONResponse(self._fault_state())

    async def clear_faults(self, _: Request) -> Response:
        self.faults.clear()
        self.pusher.drop = False
        return JSONResponse(self._fault_state())

    def _fault_state(self) -> dict[str, Any]:
        return {"rate_limit_storm_until": self.faults.storm_until, "error_5xx_ratio": self.faults.error_5xx_ratio,
                "drop_webhooks": self.pusher.drop, "fulfillment_busy": self.faults.fulfillment_busy,
                "fulfillment_busy_code": self.faults.fulfillment_busy_code}

    async def start_traffic(self, request: Request) -> Response:
        try:
            doc = await self._json(request)
            rate, duration = float(doc.get("orders_per_s", 1)), float(doc.get("duration_s", 10))
        except (WorldError, ValueError, TypeError) as exc:
            return _bad(exc)
        if rate <= 0 or duration <= 0:
            return _bad(ValueError("orders_per_s and duration_s must be positive"))
        self.traffic.append(asyncio.get_running_loop().create_task(self._traffic(rate, duration, doc.get("shop_id"))))
        return JSONResponse({"started": True, "orders_per_s": rate, "duration_s": duration,
                             "expected_orders": expected_orders(rate, duration)}, status_code=202)

    async def _traffic(self, rate: float, duration: float, shop_id: str | None) -> None:
        """A realistic mix: mostly seller-shipped orders awaiting shipment, some on hold, TikTok-shipped, FBT,
        other warehouses, and cancellations of earlier orders. Exactly the `expected_orders` announced, paced at
        `rate` (a slow machine stretches the run rather than dropping orders)."""
        rng = random.Random(self.world.rng.random())
        started = time.monotonic()
        created: list[dict[str, Any]] = []
        n, total = 0, expected_orders(rate, duration)
        while n < total:
            target = min(total, int((time.monotonic() - started) * rate) + 1)
            while n < target:
                n += 1
                order = self.world.create_order(traffic_spec(self.world, rng, shop_id))
                created.append(order)
                self.push_status(order)
                if created and rng.random() < 0.05:
                    victim = rng.choice(created)
                    if victim["status"] not in ("CANCELLED", "COMPLETED"):
                        self.push_status(self.world.move_order(victim["id"], "CANCELLED"))
            if n < total:
                await asyncio.sleep(min(0.05, 1 / rate))

    async def webhooks(self, request: Request) -> Response:
        """The pushes made (from index `since`, default 0), with answers and retry counts."""
        try:
            since = max(0, int(request.query_params.get("since", "0")))
        except ValueError:
            return _bad(ValueError("since must be an integer index"))
        return JSONResponse([p.summary() for p in self.pusher.log[since:]])

    async def calls(self, _: Request) -> Response:
        return JSONResponse(self.api.call_log[-1000:])

    async def set_config(self, request: Request) -> Response:
        try:
            doc = await self._json(request)
        except (WorldError, ValueError) as exc:
            return _bad(exc)
        config = self.pusher.config
        for name in ("webhook_url", "redirect_url", "duplicate_webhooks", "reorder_webhooks", "deny_authorization",
                     "time_factor", "qps", "low_stock_threshold", "refuse_zero_quantity"):
            if name in doc:
                setattr(config, name, doc[name])
        return JSONResponse({"webhook_url": config.webhook_url, "redirect_url": config.redirect_url,
                             "duplicate_webhooks": config.duplicate_webhooks,
                             "reorder_webhooks": config.reorder_webhooks,
                             "deny_authorization": config.deny_authorization, "time_factor": config.time_factor,
                             "qps": config.qps, "low_stock_threshold": config.low_stock_threshold,
                             "refuse_zero_quantity": config.refuse_zero_quantity})

    async def expire_tokens(self, request: Request) -> Response:
        try:
            count = self.world.expire_tokens(self.world.shop(request.path_params["shop_id"]).id)
        except WorldError as exc:
            return _bad(exc, 404)
        return JSONResponse({"expired": count})

    async def deauthorize(self, request: Request) -> Response:
        shop_id = request.path_params["shop_id"]
        try:
            self.world.deauthorize(shop_id)
        except WorldError as exc:
            return _bad(exc, 404)
        self.pusher.push(SELLER_DEAUTHORIZATION, shop_id, {"message": f"Shop_id {shop_id} is deauthorized"})
        return JSONResponse({"deauthorized": shop_id})

    async def stop(self) -> None:
        for task in self.traffic:
            task.cancel()
        await asyncio.gather(*self.traffic, return_exceptions=True)


def traffic_spec(world: World, rng: random.Random, shop_id: str | None) -> dict[str, Any]:
    """One order of the traffic mix: 70% from the shop's default warehouse, 8% on hold, 8% TikTok-shipped, 4% FBT
    (of `shop_id`, else of a random shop)."""
    shop = world.shop(shop_id) if shop_id else rng.choice(list(world.shops.values()))
    roll = rng.random()
    warehouses = world.sales_warehouses(shop.id)  # most orders ship from the default warehouse
    warehouse = warehouses[0] if rng.random() < 0.7 else rng.choice(warehouses)
    spec: dict[str, Any] = {"shop_id": shop.id, "warehouse_id": warehouse["id"]}
    if roll < 0.08:
        spec["status"] = "ON_HOLD"
    elif roll < 0.16:
        spec["shipping_type"] = "TIKTOK"
    elif roll < 0.20:
        spec["fulfillment_type"] = "FULFILLMENT_BY_TIKTOK"
    return spec


def order_status_data(order: dict[str, Any]) -> dict[str, Any]:
    """The `data` of the order's type-1 ORDER_STATUS_CHANGE webhook, for its current status."""
    return {"order_id": order["id"], "order_status": WEBHOOK_STATUS.get(order["status"], order["status"]),
            "is_on_hold_order": order["is_on_hold_order"], "update_time": order["update_time"]}


def push_order_status(pusher: WebhookPusher, order: dict[str, Any]) -> None:
    """The type-1 ORDER_STATUS_CHANGE webhook for the order's current status."""
    pusher.push(ORDER_STATUS_CHANGE, order["_shop_id"], order_status_data(order))


def _pack(order: dict[str, Any], lines: list[dict[str, Any]], package_id: str) -> None:
    for line in lines:
        line["package_id"] = package_id


def _bad(exc: Exception, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": "bad_request" if status == 400 else "not_found", "detail": str(exc)},
                        status_code=status)


def expected_orders(rate: float, duration: float) -> int:
    """How many orders a traffic run of `rate` orders/s for `duration` s creates (at least one)."""
    return max(1, int(rate * duration))

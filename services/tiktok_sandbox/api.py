"""The TikTok paths the sandbox serves, enforcing what TikTok enforces (sign, timestamp, token, cipher, QPS)."""

from __future__ import annotations

import random
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from services.tiktok_sandbox.config import SandboxConfig
from services.tiktok_sandbox.world import Grant, Shop, World
from shared.tiktok.signing import verify_api_signature

TIMESTAMP_PAST_S = 300
TIMESTAMP_FUTURE_S = 30


class ApiError(Exception):
    def __init__(self, code: int, message: str, http_status: int = 200) -> None:
        super().__init__(message)
        self.code, self.message, self.http_status = code, message, http_status


class Faults:
    """Fault injection set through the control API."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.storm_until = 0.0
        self.error_5xx_ratio = 0.0
        self.fulfillment_busy = 0  # the next N shipping writes answer `fulfillment_busy_code` ("system busy")
        self.fulfillment_busy_code = 21001003
        self.server_errors = 0  # the next N signed calls (any path) answer HTTP 500 / 36009003

    def take_server_error(self) -> None:
        """Raise an internal error while the count lasts (one signed call per count)."""
        if self.server_errors > 0:
            self.server_errors -= 1
            raise ApiError(36009003, "Internal error", 500)

    def take_fulfillment_busy(self) -> None:
        """Raise the "system busy, try again" answer while the fault lasts (one write per count)."""
        if self.fulfillment_busy > 0:
            self.fulfillment_busy -= 1
            raise ApiError(self.fulfillment_busy_code, "System busy, please try again later")


def envelope(data: Any = None, code: int = 0, message: str = "Success", http_status: int = 200) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "request_id": secrets.token_hex(16).upper(),
                         "data": data if data is not None else {}}, status_code=http_status)


class OpenApi:
    """Route handlers over the world; every signed call goes through `_guard`."""

    def __init__(self, world: World, config: SandboxConfig, faults: Faults) -> None:
        self.world = world
        self.config = config
        self.faults = faults
        self.calls: deque[float] = deque()
        self._windows: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self.call_log: list[dict[str, Any]] = []

    def routes(self) -> list[Route]:
        return [
            Route("/api/v2/token/get", self.token_get, methods=["GET"]),
            Route("/api/v2/token/refresh", self.token_refresh, methods=["GET"]),
            Route("/open/authorize", self.authorize, methods=["GET"]),
            Route("/authorization/202309/shops", self._signed(self.shops, cipher=False), methods=["GET"]),
            Route("/logistics/202309/warehouses", self._signed(self.warehouses), methods=["GET"]),
            Route("/order/202309/orders", self._signed(self.order_detail), methods=["GET"]),
            Route("/order/202309/orders/search", self._signed(self.order_search), methods=["POST"]),
        ]

    # ---- OAuth -----------------------------------------------------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        """Auto-approves (or denies) and redirects to the app's redirect URL, like the seller's consent page."""
        q = request.query_params
        target = q.get("redirect_uri") or self.config.redirect_url
        if not target:
            return JSONResponse({"error": "no redirect URL configured"}, status_code=400)
        if q.get("service_id") != self.config.service_id:
            return JSONResponse({"error": f"unknown service_id {q.get('service_id')!r}"}, status_code=400)
        params: dict[str, str] = {}
        if self.config.deny_authorization or q.get("deny") == "1":
            params = {"code": "null", "error": "auth_denied"}
        else:
            shop = self.world.shop(q.get("shop_id"))
            params = {"code": self.world.issue_auth_code(shop.id)}
        if q.get("state") is not None:
            params["state"] = q["state"]
        return RedirectResponse(f"{target}{'&' if '?' in target else '?'}{urlencode(params)}", status_code=302)

    async def token_get(self, request: Request) -> Response:
        return self._token(request, "authorized_code", "auth_code", self.world.redeem_auth_code,
                           "auth_code is invalid, used or expired")

    async def token_refresh(self, request: Request) -> Response:
        return self._token(request, "refresh_token", "refresh_token", self.world.refresh,
                           "refresh_token is invalid or expired")

    def _token(self, request: Request, grant_type: str, field: str, redeem: Callable[[str], Grant | None],
               invalid: str) -> Response:
        """The auth host's token calls: unsigned, app key + secret in the query."""
        q = request.query_params
        self._check_app(q.get("app_key"), q.get("app_secret"))
        if q.get("grant_type") != grant_type:
            return envelope(code=36004004, message=f"grant_type must be {grant_type}")
        grant = redeem(q.get(field, ""))
        if grant is None:
            return envelope(code=36004004, message=invalid)
        return envelope(self._grant_data(grant))

    def _grant_data(self, grant: Grant) -> dict[str, Any]:
        shop = self.world.shop(grant.shop_id)
        return {"access_token": grant.access_token, "access_token_expire_in": grant.access_expires,
                "refresh_token": grant.refresh_token, "refresh_token_expire_in": grant.refresh_expires,
                "open_id": f"open_{shop.id[-6:]}", "seller_name": shop.name, "seller_base_region": shop.region,
                "user_type": 0, "granted_scopes": ["seller.order.info", "seller.logistics"]}

    def _check_app(self, app_key: str | None, app_secret: str | None) -> None:
        if app_key != self.config.app_key or app_secret != self.config.app_secret:
            raise ApiError(36004004, "invalid app_key or app_secret")

    # ---- signed Open API -------------------------------------------------------------------------------------
    def _signed(self, handler: Callable[[Request, Grant, Any, bytes], Awaitable[Response]],
                cipher: bool = True) -> Callable[[Request], Awaitable[Response]]:
        """`handler` gets the shop of `shop_cipher`: a `Shop`, or None when `cipher` is False (hence `Any`)."""
        async def endpoint(request: Request) -> Response:
            body = await request.body()
            try:
                grant, shop = self._guard(request, body, cipher)
                return await handler(request, grant, shop, body)
            except ApiError as exc:
                return envelope(code=exc.code, message=exc.message, http_status=exc.http_status)
        return endpoint

    def _guard(self, request: Request, body: bytes, needs_cipher: bool) -> tuple[Grant, Shop | None]:
        q = dict(request.query_params)
        now = time.time()
        self.call_log.append({"path": request.url.path, "at": now,
                              "query": {k: v for k, v in q.items() if k != "sign"}})
        if q.get("app_key") != self.config.app_key:
            raise ApiError(36009004, "invalid app_key")
        if not q.get("sign"):
            raise ApiError(36009004, "missing signature")
        if not verify_api_signature(self.config.app_secret, request.url.path, q, body):
            raise ApiError(106001, "Invalid sign", 401)
        try:
            ts = int(q.get("timestamp", ""))
        except ValueError:
            raise ApiError(36009004, "invalid timestamp") from None
        if not now - TIMESTAMP_PAST_S <= ts <= now + TIMESTAMP_FUTURE_S:
            raise ApiError(36009004, "timestamp outside the allowed window")
        grant = self.world.grants.get(request.headers.get("x-tts-access-token", ""))
        if grant is None:
            raise ApiError(36009004, "invalid access token")
        if grant.access_expires < now:
            raise ApiError(105002, "Expired credentials")
        shop = None
        if needs_cipher:
            if not q.get("shop_cipher"):
                raise ApiError(106013, "shop_cipher is required")
            shop = self.world.shop_by_cipher(q["shop_cipher"])
            if shop is None or not grant.covers(shop.id):
                raise ApiError(101000, "access token does not match shop_cipher")
        elif q.get("shop_cipher"):
            raise ApiError(36009004, "Unexpected identifier: shop_cipher")
        self._throttle(shop.id if shop is not None else grant.shop_id, now)
        if self.faults.error_5xx_ratio and random.random() < self.faults.error_5xx_ratio:
            raise ApiError(36009003, "Internal error", 500)
        self.faults.take_server_error()
        return grant, shop

    def _throttle(self, shop_id: str, now: float) -> None:
        if now < self.faults.storm_until:
            raise ApiError(36009002, "Too many requests", 429)
        window = self._windows[(self.config.app_key, shop_id)]
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= self.config.qps:
            raise ApiError(36009002, "Too many requests", 429)
        window.append(now)

    async def shops(self, request: Request, grant: Grant, _: Shop | None, __: bytes) -> Response:
        """Every shop the authorization covers: one, or one per country for a cross-border seller."""
        covered = [self.world.shop(i) for i in grant.shop_ids or (grant.shop_id,)]
        return envelope({"shops": [{"id": s.id, "name": s.name, "region": s.region, "seller_type": s.seller_type,
                                    "cipher": s.cipher, "code": s.code} for s in covered]})

    async def warehouses(self, request: Request, grant: Grant, shop: Shop, __: bytes) -> Response:
        return envelope({"warehouses": self.world.warehouses[shop.id]})

    async def order_detail(self, request: Request, grant: Grant, shop: Shop, __: bytes) -> Response:
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        if not ids or len(ids) > 50:
            raise ApiError(36009004, "ids must list 1 to 50 order ids")
        orders = []
        for order_id in ids:
            order = self.world.orders.get(order_id)
            if order is None or order["_shop_id"] != shop.id:
                raise ApiError(21008111, f"order {order_id} is not owned by this seller")
            orders.append(self.world.public_order(order))
        return envelope({"orders": orders})

    async def order_search(self, request: Request, grant: Grant, shop: Shop, body: bytes) -> Response:
        try:
            filters = orjson.loads(body) if body else {}
            page_size = int(request.query_params.get("page_size", ""))
        except ValueError:
            raise ApiError(36009004, "page_size (1-100) and a JSON body are required") from None
        if not 1 <= page_size <= 100:
            raise ApiError(36009004, "page_size must be 1-100")
        matches = [o for o in self.world.orders.values() if o["_shop_id"] == shop.id and _matches(o, filters)]
        matches.sort(key=lambda o: (o["update_time"], o["id"]))
        start = int(request.query_params.get("page_token") or 0)
        page = matches[start:start + page_size]
        next_token = str(start + page_size) if start + page_size < len(matches) else ""
        return envelope({"orders": [self.world.public_order(o) for o in page], "next_page_token": next_token,
                         "total_count": len(matches)})


def _matches(order: dict[str, Any], f: dict[str, Any]) -> bool:
    checks: list[tuple[str, Callable[[Any], bool]]] = [
        ("order_status", lambda v: order["status"] == v),
        ("shipping_type", lambda v: order["shipping_type"] == v),
        ("update_time_ge", lambda v: order["update_time"] >= v),
        ("update_time_lt", lambda v: order["update_time"] < v),
        ("create_time_ge", lambda v: order["create_time"] >= v),
        ("create_time_lt", lambda v: order["create_time"] < v),
        ("warehouse_ids", lambda v: order["warehouse_id"] in v),
    ]
    return all(check(f[name]) for name, check in checks if f.get(name) is not None)

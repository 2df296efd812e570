"""Async TikTok Shop Open API client on httpx: signed requests, typed errors, retries, token refresh, rate limit.

Retries follow the `RetryPolicy` the client is built with (`shared.tiktok.retry`), the only retries of an HTTP
call: 429 / 36009002, 5xx, internal and "system busy" errors, timeouts and connection errors, with jittered
exponential backoff honouring `Retry-After` (capped at 60 s). The shipping writes (Mark Package As Shipped, Ship
Package, shipping-info updates) are retried too: one that landed before a timeout is answered "already shipped" /
"already updated" on the retry, which store sync checks against a re-read order. An expired token (105002) calls
`on_token_expired(shop_id)` once and retries with the token it returns. Requests per (app, shop) are spaced to
stay under `qps`. `counting_calls()` tells a caller how many HTTP calls an operation made.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

import httpx
import orjson

from shared.logging import get_logger
from shared.settings import Settings
from shared.tiktok.errors import RateLimited, TikTokError, TokenExpired, Transient, error_for
from shared.tiktok.fields import Fields
from shared.tiktok.metrics import TikTokMetrics
from shared.tiktok.models import AuthorizedShop, ShippingProvider, ShopAuth, TokenGrant, Warehouse
from shared.tiktok.orders import TikTokOrder, read_order
from shared.tiktok.ratelimit import RateLimiter
from shared.tiktok.retry import DEFAULT_RETRY, RETRY_AFTER_CAP_S, RetryPolicy, note_call
from shared.tiktok.signing import api_signature

log = get_logger("tiktok.client")

ORDER_DETAIL_PATH = "/order/202309/orders"
ORDER_SEARCH_PATH = "/order/202309/orders/search"
SHOPS_PATH = "/authorization/202309/shops"
WAREHOUSES_PATH = "/logistics/202309/warehouses"
SHIPPING_PROVIDERS_PATH = "/logistics/202309/delivery_options/{delivery_option_id}/shipping_providers"
MARK_SHIPPED_PATH = "/fulfillment/202309/orders/{order_id}/packages"
SHIP_PACKAGE_PATH = "/fulfillment/202309/packages/{package_id}/ship"
ORDER_SHIPPING_INFO_PATH = "/fulfillment/202309/orders/{order_id}/shipping_info/update"
PACKAGE_SHIPPING_INFO_PATH = "/fulfillment/202309/packages/{package_id}/shipping_info/update"
PRODUCT_PATH = "/product/202309/products/{product_id}"
PRODUCT_SEARCH_PATH = "/product/202309/products/search"
INVENTORY_SEARCH_PATH = "/product/202309/inventory/search"
INVENTORY_UPDATE_PATH = "/product/202309/products/{product_id}/inventory/update"
TOKEN_GET_PATH = "/api/v2/token/get"
TOKEN_REFRESH_PATH = "/api/v2/token/refresh"
ORDER_DETAIL_BATCH = 50
INVENTORY_SEARCH_BATCH = 100
# Requests are paced a little under the configured QPS: TikTok counts arrivals in a sliding second, so exact
# pacing plus a few ms of scheduling jitter would put the 51st request inside the window and earn a 429.
PACING = 0.96
API_TEMPLATES = (ORDER_DETAIL_PATH, ORDER_SEARCH_PATH, SHOPS_PATH, WAREHOUSES_PATH, SHIPPING_PROVIDERS_PATH,
                 MARK_SHIPPED_PATH, SHIP_PACKAGE_PATH, ORDER_SHIPPING_INFO_PATH, PACKAGE_SHIPPING_INFO_PATH,
                 PRODUCT_PATH, PRODUCT_SEARCH_PATH, INVENTORY_SEARCH_PATH, INVENTORY_UPDATE_PATH, TOKEN_GET_PATH,
                 TOKEN_REFRESH_PATH)
_API_PATTERNS = [(re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(t)) + "$"), t) for t in API_TEMPLATES]


def api_template(path: str) -> str:
    """The template `path` was made from (`other` for one not listed), the bounded `api` label of the metrics."""
    for pattern, template in _API_PATTERNS:
        if pattern.match(path):
            return template
    return "other"


class TikTokClient:
    """One app's view of the TikTok Shop Open API."""

    def __init__(self, *, app_key: str, app_secret: str, api_base: str, auth_base: str, qps: float = 50.0,
                 timeout: float = 10.0, retry: RetryPolicy = DEFAULT_RETRY,
                 transport: httpx.AsyncBaseTransport | None = None, metrics: TikTokMetrics | None = None,
                 on_token_expired: Callable[[str], Awaitable[str]] | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._app_key = app_key
        self._app_secret = app_secret
        self._api_base = api_base.rstrip("/")
        self._auth_base = auth_base.rstrip("/")
        self._retry = retry
        self._metrics = metrics
        self._clock = clock
        self._sleep = sleep
        self.on_token_expired = on_token_expired
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport,
                                       limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))
        self._limiter = RateLimiter(qps * PACING, sleep=sleep)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> TikTokClient:
        options: dict[str, Any] = {
            "app_key": settings.tiktok_app_key,
            "app_secret": settings.tiktok_app_secret.get_secret_value(),
            "api_base": settings.tiktok_api_base,
            "auth_base": settings.tiktok_auth_base,
            "qps": settings.tiktok_rate_limit_qps,
            "timeout": settings.tiktok_timeout_s,
            "retry": RetryPolicy(attempts=settings.tiktok_max_retries + 1),
        }
        options.update(overrides)
        return cls(**options)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> TikTokClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- auth host (unsigned) ----------------------------------------------------------------------------
    async def get_token(self, auth_code: str) -> TokenGrant:
        """Exchange an authorization code (valid once, 30 minutes) for tokens."""
        data = await self._call("GET", self._auth_base, TOKEN_GET_PATH, signed=False, params={
            "app_key": self._app_key, "app_secret": self._app_secret, "auth_code": auth_code,
            "grant_type": "authorized_code"})
        return TokenGrant.from_api(Fields(data, ""))

    async def refresh_token(self, refresh_token: str) -> TokenGrant:
        data = await self._call("GET", self._auth_base, TOKEN_REFRESH_PATH, signed=False, params={
            "app_key": self._app_key, "app_secret": self._app_secret, "refresh_token": refresh_token,
            "grant_type": "refresh_token"})
        return TokenGrant.from_api(Fields(data, ""))

    # ---- Open API ----------------------------------------------------------------------------------------
    async def get_authorized_shops(self, access_token: str) -> list[AuthorizedShop]:
        data = await self._call("GET", self._api_base, SHOPS_PATH, access_token=access_token)
        return [AuthorizedShop.from_api(shop) for shop in Fields(data, "").objects("shops")]

    async def get_warehouses(self, shop: ShopAuth) -> list[Warehouse]:
        data = await self._call("GET", self._api_base, WAREHOUSES_PATH, shop=shop)
        return [Warehouse.from_api(warehouse) for warehouse in Fields(data, "").objects("warehouses")]

    async def get_order_detail(self, shop: ShopAuth, order_ids: Sequence[str]) -> list[TikTokOrder]:
        """Orders by id, fetched in batches of 50 (concurrently) and returned in input order; an order that breaks
        TikTok's contract raises MalformedPayload (for the whole call: ask for ids one by one to find it)."""
        batches = [list(order_ids[i:i + ORDER_DETAIL_BATCH]) for i in range(0, len(order_ids), ORDER_DETAIL_BATCH)]
        results = await asyncio.gather(*(
            self._call("GET", self._api_base, ORDER_DETAIL_PATH, shop=shop, params={"ids": ",".join(batch)})
            for batch in batches))
        by_id = {order.id: order for data in results for order in map(read_order, Fields(data, "").records("orders"))}
        return [by_id[i] for i in order_ids if i in by_id]

    async def search_orders(self, shop: ShopAuth, *, order_status: str | None = None,
                            shipping_type: str | None = None, update_time_ge: int | None = None,
                            update_time_lt: int | None = None, create_time_ge: int | None = None,
                            create_time_lt: int | None = None, warehouse_ids: Sequence[str] | None = None,
                            page_size: int = 100) -> AsyncIterator[TikTokOrder]:
        """Every matching order, following `next_page_token` to the end (sorted by update time, ascending); an
        order that breaks TikTok's contract raises MalformedPayload."""
        body: dict[str, Any] = {k: v for k, v in {
            "order_status": order_status, "shipping_type": shipping_type, "update_time_ge": update_time_ge,
            "update_time_lt": update_time_lt, "create_time_ge": create_time_ge, "create_time_lt": create_time_lt,
            "warehouse_ids": list(warehouse_ids) if warehouse_ids else None}.items() if v is not None}
        params = {"page_size": page_size, "sort_field": "update_time", "sort_order": "ASC"}
        async for page in self._pages(ORDER_SEARCH_PATH, shop, params, body):
            for order in Fields(page, "").records("orders"):
                yield read_order(order)

    # ---- seller shipping (§8) -----------------------------------------------------------------------------
    async def get_shipping_providers(self, shop: ShopAuth, delivery_option_id: str) -> list[ShippingProvider]:
        path = SHIPPING_PROVIDERS_PATH.format(delivery_option_id=delivery_option_id)
        data = await self._call("GET", self._api_base, path, shop=shop)
        return [ShippingProvider.from_api(provider) for provider in Fields(data, "").objects("shipping_providers")]

    async def mark_package_shipped(self, shop: ShopAuth, order_id: str, *, tracking_number: str,
                                   shipping_provider_id: str, line_item_ids: Sequence[str] | None = None
                                   ) -> dict[str, Any]:
        """Mark Package As Shipped (US/UK/EU/JP markets): creates the package; `data` has package_id, warning."""
        body: dict[str, Any] = {"tracking_number": tracking_number, "shipping_provider_id": shipping_provider_id}
        if line_item_ids:
            body["order_line_item_ids"] = list(line_item_ids)
        return await self._call("POST", self._api_base, MARK_SHIPPED_PATH.format(order_id=order_id), shop=shop,
                                body=body)

    async def ship_package(self, shop: ShopAuth, package_id: str, *, tracking_number: str,
                           shipping_provider_id: str) -> dict[str, Any]:
        """Ship Package (other markets) with the seller's own carrier."""
        body = {"self_shipment": {"tracking_number": tracking_number, "shipping_provider_id": shipping_provider_id}}
        return await self._call("POST", self._api_base, SHIP_PACKAGE_PATH.format(package_id=package_id), shop=shop,
                                body=body)

    async def update_shipping_info(self, shop: ShopAuth, *, tracking_number: str, shipping_provider_id: str,
                                   order_id: str | None = None, package_id: str | None = None) -> dict[str, Any]:
        """Correct the tracking number of a shipped order (or, for split orders, of one package)."""
        path = (PACKAGE_SHIPPING_INFO_PATH.format(package_id=package_id) if package_id
                else ORDER_SHIPPING_INFO_PATH.format(order_id=order_id))
        body = {"tracking_number": tracking_number, "shipping_provider_id": shipping_provider_id}
        return await self._call("POST", self._api_base, path, shop=shop, body=body)

    # ---- products and inventory (§9) -----------------------------------------------------------------------
    async def search_products(self, shop: ShopAuth, *, seller_skus: Sequence[str] | None = None,
                              update_time_ge: int | None = None, page_size: int = 100
                              ) -> AsyncIterator[dict[str, Any]]:
        """Every matching product with its SKUs (seller SKU, per-warehouse inventory), page after page."""
        body: dict[str, Any] = {}
        if seller_skus:
            body["seller_skus"] = list(seller_skus)
        if update_time_ge is not None:
            body["update_time_ge"] = update_time_ge
        async for page in self._pages(PRODUCT_SEARCH_PATH, shop, {"page_size": page_size}, body):
            for product in page.get("products") or []:
                yield product

    async def get_product(self, shop: ShopAuth, product_id: str) -> dict[str, Any]:
        """Get Product: one product as TikTok shows it now (`id`, `status`, `update_time`, `skus[]` with
        `seller_sku` and `inventory[] {warehouse_id, quantity}`)."""
        return await self._call("GET", self._api_base, PRODUCT_PATH.format(product_id=product_id), shop=shop)

    async def search_products_page(self, shop: ShopAuth, body: dict[str, Any], *, page_size: int = 100,
                                   page_token: str = "") -> tuple[list[dict[str, Any]], str, int]:
        """One page of Search Products: (products, next_page_token or "", total_count). TikTok serves at most
        10,000 results per filter (12052180), so large catalogs are walked by filter (`store_sync.catalog_walk`)."""
        query: dict[str, Any] = {"page_size": page_size} | ({"page_token": page_token} if page_token else {})
        data = await self._call("POST", self._api_base, PRODUCT_SEARCH_PATH, shop=shop, params=query, body=body)
        return list(data.get("products") or []), str(data.get("next_page_token") or ""), int(data.get("total_count")
                                                                                             or 0)

    async def _pages(self, path: str, shop: ShopAuth, params: dict[str, Any], body: dict[str, Any]
                     ) -> AsyncIterator[dict[str, Any]]:
        """POST a search and follow `next_page_token` to the end, yielding each page's `data`."""
        token = ""
        while True:
            query = params | ({"page_token": token} if token else {})
            data = await self._call("POST", self._api_base, path, shop=shop, params=query, body=body)
            yield data
            token = data.get("next_page_token") or ""
            if not token:
                return

    async def search_inventory(self, shop: ShopAuth, product_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Current stock per SKU and warehouse of up to 100 products a call (longer lists are split)."""
        batches = [list(product_ids[i:i + INVENTORY_SEARCH_BATCH])
                   for i in range(0, len(product_ids), INVENTORY_SEARCH_BATCH)]
        results = await asyncio.gather(*(
            self._call("POST", self._api_base, INVENTORY_SEARCH_PATH, shop=shop, body={"product_ids": batch})
            for batch in batches))
        return [item for data in results for item in data.get("inventory") or []]

    async def update_inventory(self, shop: ShopAuth, product_id: str,
                               skus: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Set stock of SKUs of one product (every warehouse of each SKU listed); returns the per-SKU errors
        TikTok reports with `code: 0` (empty when everything applied)."""
        data = await self._call("POST", self._api_base, INVENTORY_UPDATE_PATH.format(product_id=product_id),
                                shop=shop, body={"skus": list(skus)})
        return list(data.get("errors") or [])

    # ---- transport -----------------------------------------------------------------------------------------
    async def _call(self, method: str, base: str, path: str, *, shop: ShopAuth | None = None,
                    access_token: str | None = None, params: dict[str, Any] | None = None,
                    body: dict[str, Any] | None = None, signed: bool = True) -> dict[str, Any]:
        """One logical call: retried per the client's policy, with at most one token refresh; returns the
        envelope's `data`, or raises the last error."""
        refreshed = False
        calls = 0
        while True:
            calls += 1
            try:
                return await self._send(method, base, path, shop, access_token, params or {}, body, signed)
            except TokenExpired:
                if refreshed or shop is None or self.on_token_expired is None:
                    raise
                refreshed = True
                calls -= 1  # the call after a refresh is the same attempt with a new token
                shop = replace(shop, access_token=await self.on_token_expired(shop.shop_id))
            except (RateLimited, Transient) as exc:
                if calls >= self._retry.attempts:
                    raise
                delay = self._retry.delay(calls - 1, exc.retry_after if isinstance(exc, RateLimited) else None)
                log.warning("tiktok_retry", path=path, code=exc.code, http_status=exc.http_status,
                            attempt=calls, delay_s=round(delay, 3), request_id=exc.request_id)
                await self._sleep(delay)

    async def _send(self, method: str, base: str, path: str, shop: ShopAuth | None, access_token: str | None,
                    params: dict[str, Any], body: dict[str, Any] | None, signed: bool) -> dict[str, Any]:
        query = dict(params)
        headers = {"content-type": "application/json"}
        content = orjson.dumps(body) if body is not None else b""
        if signed:
            query["app_key"] = self._app_key
            query["timestamp"] = str(int(self._clock()))
            if shop is not None:
                query["shop_cipher"] = shop.cipher
            query["sign"] = api_signature(self._app_secret, path, query, content)
            token = shop.access_token if shop is not None else access_token
            if token:
                headers["x-tts-access-token"] = token
            await self._limiter.acquire((self._app_key, shop.shop_id if shop else None))
        note_call()
        started = time.perf_counter()
        error: TikTokError | None = None
        answered = False  # a cancelled call is not counted
        try:
            response = await self._http.request(method, base + path, params=query, content=content or None,
                                                headers=headers)
            answered = True
            return self._unwrap(path, response)
        except httpx.TimeoutException as exc:
            error = Transient(f"timeout calling {path}: {exc.__class__.__name__}")
        except httpx.TransportError as exc:
            error = Transient(f"connection error calling {path}: {exc.__class__.__name__}")
        except TikTokError as exc:
            error = exc
            raise
        finally:
            if self._metrics is not None and (answered or error is not None):
                self._metrics.observe(api_template(path), shop.shop_id if shop else None, error,
                                      time.perf_counter() - started)
        raise error from None

    @staticmethod
    def _unwrap(path: str, response: httpx.Response) -> dict[str, Any]:
        retry_after = _retry_after(response.headers.get("retry-after"))
        try:
            envelope = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            envelope = None
        if not isinstance(envelope, dict):
            raise error_for(None, f"{path}: non-JSON answer", None, response.status_code, retry_after)
        code = envelope.get("code")
        request_id = envelope.get("request_id")
        if code not in (0, None) or response.status_code >= 400:
            raise error_for(code if isinstance(code, int) else None,
                            f"{path}: {envelope.get('message') or 'error'}", request_id, response.status_code,
                            retry_after)
        data = envelope.get("data")
        return data if isinstance(data, dict) else {}


def _retry_after(value: str | None) -> float | None:
    """The seconds `Retry-After` asks for, capped at RETRY_AFTER_CAP_S; None when absent or not a number."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    if seconds is None or not seconds >= 0:  # negative, or NaN
        return None
    return min(seconds, RETRY_AFTER_CAP_S)


__all__ = ["TikTokClient", "TikTokError"]

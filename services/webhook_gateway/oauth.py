"""`GET /oauth/tiktok/callback`: TikTok redirects the seller here after consent; this completes the link.

When the authorization covers several shops (cross-border sellers), the page lists them, each with a link back
here (`?state=<choice state>&shop_id=<id>`) that links the one picked.

The callback is on the internet, so it is cheap to refuse: a per-client token bucket first (429), then the state
must be well-formed and pending in the followed in-memory view (`PendingLinks`) before any Kafka work is done.
"""

from __future__ import annotations

import contextlib
import html
import math
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from services.webhook_gateway.pending_links import PendingLinks, well_formed_state
from services.webhook_gateway.throttle import ClientThrottle
from shared.kafka import create_producer
from shared.logging import get_logger
from shared.settings import Settings
from shared.stores.crypto import MissingSecretKey, TokenCipher
from shared.stores.linking import LinkError, ShopChoiceNeeded, complete_choice, complete_link
from shared.stores.model import PENDING_KEY_PREFIX, StoreRecord
from shared.stores.table import StoreWriter
from shared.stores.warehouses import WarehouseNotFound
from shared.tiktok.client import TikTokClient
from shared.tiktok.errors import TikTokError

log = get_logger("webhook_gateway.oauth")
CALLBACK_PATH = "/oauth/tiktok/callback"
PENDING_WAIT_S = 2.0  # how long a well-formed state not seen yet is waited for (`stores link` just wrote it)
UNKNOWN = ("Unknown or used link",
           "This authorization link is unknown or was already used. Run `shopsync stores link` again.")


class CallbackRoute(Route):
    """The callback route, with the pending-links view the gateway's lifespan keeps following (`running`)."""

    def __init__(self, endpoint: Callable[[Request], Awaitable[HTMLResponse]], links: PendingLinks,
                 settings: Settings) -> None:
        super().__init__(CALLBACK_PATH, endpoint, methods=["GET"])
        self.links = links
        self._settings = settings

    def running(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self.links.following(self._settings)


def oauth_routes(settings: Settings, client_factory: Callable[[], TikTokClient] | None = None, *,
                 links: PendingLinks | None = None, throttle: ClientThrottle | None = None,
                 pending_wait_s: float = PENDING_WAIT_S) -> list[Route]:
    """The callback route (mounted through `create_app(extra_routes=...)`, whose lifespan follows `links`)."""
    make_client = client_factory or (lambda: TikTokClient.from_settings(settings))
    links = links if links is not None else PendingLinks()
    throttle = throttle or ClientThrottle()

    async def callback(request: Request) -> HTMLResponse:
        client_host = request.client.host if request.client else "unknown"
        if (wait := throttle.retry_after(client_host)) > 0:
            seconds = str(math.ceil(wait))
            log.warning("oauth_callback_throttled", client=client_host)
            return _page(429, "Too many attempts", f"Too many linking attempts from this address; try again in "
                         f"{seconds} s.", headers={"Retry-After": seconds})
        q = request.query_params
        if q.get("error"):
            if q["error"] == "auth_denied":
                return _page(403, "Authorization declined",
                             "You declined access in TikTok Shop, so the store was not linked. "
                             "Run `shopsync stores link` again when you are ready.")
            return _page(400, "Authorization failed", f"TikTok answered: {q['error']}")
        state, code, shop_id = q.get("state", ""), q.get("code", ""), q.get("shop_id", "")
        if not state or not (code or shop_id):
            return _page(400, "Invalid link", "The callback is missing its `code` or `state`.")
        if not well_formed_state(state):
            return _page(400, *UNKNOWN)
        try:
            cipher = TokenCipher(settings.shopsync_secret_key.get_secret_value())
        except MissingSecretKey as exc:
            return _page(500, "Server not configured", str(exc))
        pending = await links.wait_for(state, pending_wait_s)
        if pending is None:
            return _page(400, *UNKNOWN)
        links.take(state)  # single use, whatever happens next: refused here at once, by the tombstone elsewhere
        producer = create_producer(settings)
        try:
            try:
                await producer.start()
                writer = StoreWriter(producer, settings)
                await writer.delete(f"{PENDING_KEY_PREFIX}{state}")
            except BaseException:
                links.give_back(pending)
                raise
            return await complete(pending, writer, code, shop_id, cipher)
        finally:
            await producer.stop()

    async def complete(pending: StoreRecord, writer: StoreWriter, code: str, shop_id: str,
                       cipher: TokenCipher) -> HTMLResponse:
        """Finish the link the (now used) pending record began; the page to show the seller."""
        try:
            if pending.state_expires_at < time.time():
                return _page(400, "Link expired", "This authorization link has expired (30 minutes). "
                             "Run `shopsync stores link` again.")
            client = make_client()
            try:
                if code:
                    store = await complete_link(pending, code, client, cipher)
                elif pending.access_token_enc:
                    store = await complete_choice(pending, shop_id, client, cipher)
                else:
                    return _page(400, "Invalid link", "This link is not a shop choice. Run `shopsync stores link` "
                                 "again.")
            finally:
                await client.aclose()
            await writer.put(store)
        except ShopChoiceNeeded as exc:
            await writer.put(exc.pending)
            log.info("store_link_choice", nickname=pending.nickname, shops=[s.id for s in exc.shops])
            return _choice_page(exc)
        except WarehouseNotFound as exc:
            log.warning("store_link_failed", reason="warehouse_not_found", nickname=pending.nickname,
                        typed=exc.typed, available=exc.available)
            return _page(400, "Linking failed: warehouse not found", str(exc))
        except LinkError as exc:
            return _page(400, "Linking failed", str(exc))
        except MissingSecretKey:  # SHOPSYNC_SECRET_KEY changed while the seller was choosing a shop
            return _page(400, "Link expired", "This shop choice can no longer be read (the secret key changed). "
                         "Run `shopsync stores link` again.")
        except TikTokError as exc:
            log.error("store_link_failed", reason="tiktok_error", code=exc.code, request_id=exc.request_id)
            return _page(502, "Linking failed", f"TikTok returned an error (code {exc.code}, request id "
                         f"{exc.request_id}). Try `shopsync stores link` again.")
        warehouses = ", ".join(dict.fromkeys(store.warehouse_names)) or "all warehouses"
        log.info("store_linked", shop_id=store.shop_id, nickname=store.nickname, warehouses=store.warehouse_ids)
        return _page(200, "Store linked",
                     f'"{store.nickname}" is linked to TikTok shop "{store.shop_name}" ({store.shop_id}). '
                     f"Orders from {warehouses} will be synced.")

    return [CallbackRoute(callback, links, settings)]


def _choice_page(choice: ShopChoiceNeeded) -> HTMLResponse:
    """One link per shop the authorization covers; following one links that shop (valid 30 minutes, once)."""
    state = choice.pending.state
    items = "".join(
        f"<li><a href='?{html.escape(urlencode({'state': state, 'shop_id': s.id}))}'>{html.escape(s.name)}</a> "
        f"— region {html.escape(s.region)}, {html.escape(s.seller_type or 'shop')}, shop id {html.escape(s.id)}</li>"
        for s in choice.shops)
    title = "Choose the shop to link"
    body = (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body><h1>{title}</h1>"
            f"<p>This authorization covers {len(choice.shops)} shops. Pick the one to link as "
            f"&quot;{html.escape(choice.pending.nickname)}&quot; (the link works once, for 30 minutes); to link "
            "another one too, run <code>shopsync stores link --region REGION</code> again.</p>"
            f"<ul>{items}</ul></body></html>")
    return HTMLResponse(body, status_code=200)


def _page(status: int, title: str, message: str, headers: dict[str, str] | None = None) -> HTMLResponse:
    body = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>")
    return HTMLResponse(body, status_code=status, headers=headers)

"""`GET /oauth/tiktok/callback`: TikTok redirects the seller here after consent; this completes the link.

When the authorization covers several shops (cross-border sellers), the page lists them, each with a link back
here (`?state=<choice state>&shop_id=<id>`) that links the one picked.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from shared.kafka import create_producer
from shared.logging import get_logger
from shared.settings import Settings
from shared.stores.crypto import MissingSecretKey, TokenCipher
from shared.stores.linking import LinkError, ShopChoiceNeeded, complete_choice, complete_link
from shared.stores.model import PENDING_KEY_PREFIX
from shared.stores.table import StoreTable, StoreWriter
from shared.stores.warehouses import WarehouseNotFound
from shared.tiktok.client import TikTokClient
from shared.tiktok.errors import TikTokError

log = get_logger("webhook_gateway.oauth")


def oauth_routes(settings: Settings, client_factory: Callable[[], TikTokClient] | None = None) -> list[Route]:
    """The callback route; the store table is read per request (it is small and linking is rare)."""
    make_client = client_factory or (lambda: TikTokClient.from_settings(settings))

    async def callback(request: Request) -> HTMLResponse:
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
        try:
            cipher = TokenCipher(settings.shopsync_secret_key.get_secret_value())
        except MissingSecretKey as exc:
            return _page(500, "Server not configured", str(exc))
        table = await StoreTable().load(settings)
        pending = table.pending.get(state)
        if pending is None:
            return _page(400, "Unknown or used link",
                         "This authorization link is unknown or was already used. Run `shopsync stores link` again.")
        producer = create_producer(settings)
        await producer.start()
        try:
            writer = StoreWriter(producer, settings)
            await writer.delete(f"{PENDING_KEY_PREFIX}{state}")  # single use, whatever happens next
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
        finally:
            await producer.stop()
        warehouses = ", ".join(dict.fromkeys(store.warehouse_names)) or "all warehouses"
        log.info("store_linked", shop_id=store.shop_id, nickname=store.nickname, warehouses=store.warehouse_ids)
        return _page(200, "Store linked",
                     f'"{store.nickname}" is linked to TikTok shop "{store.shop_name}" ({store.shop_id}). '
                     f"Orders from {warehouses} will be synced.")

    return [Route("/oauth/tiktok/callback", callback, methods=["GET"])]


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


def _page(status: int, title: str, message: str) -> HTMLResponse:
    body = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>")
    return HTMLResponse(body, status_code=status)

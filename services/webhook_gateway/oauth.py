"""`GET /oauth/tiktok/callback`: TikTok redirects the seller here after consent; the stores owner completes the link.

The gateway serves the public URL but never writes `shopsync.stores`: it sends a `link` command (state + code, or
the shop the seller picked) to the stores owner, waits for its answer and renders it. When the authorization
covers several shops (cross-border sellers), the page lists them, each with a link back here
(`?state=<choice state>&shop_id=<id>`) that links the one picked.

The callback is on the internet, so it is cheap to refuse: a per-client token bucket first (429), then the state
must be well-formed and pending in the followed in-memory view (`PendingLinks`) before any Kafka work is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlencode

from aiokafka.errors import KafkaError
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from services.webhook_gateway.pending_links import PendingLinks, well_formed_state
from services.webhook_gateway.throttle import ClientThrottle
from shared.kafka import create_producer
from shared.logging import get_logger
from shared.settings import Settings
from shared.stores.commands import APPLIED, CHOICE_NEEDED, CommandResult, Link, OwnerNotAnswering, StoreCommands
from shared.stores.model import StoreRecord

log = get_logger("webhook_gateway.oauth")
CALLBACK_PATH = "/oauth/tiktok/callback"
PENDING_WAIT_S = 2.0  # how long a well-formed state not seen yet is waited for (`stores link` just wrote it)
UNKNOWN = ("Unknown or used link",
           "This authorization link is unknown or was already used. Run `shopsync stores link` again.")
FAILURE_PAGES: dict[str, tuple[int, str]] = {  # the owner's failure reason → (HTTP status, title)
    "warehouse_not_found": (400, "Linking failed: warehouse not found"),
    "link_expired": (400, "Link expired"),
    "choice_unreadable": (400, "Link expired"),
    "not_a_choice": (400, "Invalid link"),
    "unknown_link": (400, UNKNOWN[0]),
    "tiktok_error": (502, "Linking failed"),
}


class LinkRequests:
    """The callback's line to the stores owner: a producer and `StoreCommands`, opened on the first link it
    forwards and closed with the app."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._opening = asyncio.Lock()
        self._open = contextlib.AsyncExitStack()
        self._commands: StoreCommands | None = None

    async def commands(self) -> StoreCommands:
        async with self._opening:
            if self._commands is None:
                try:
                    producer = create_producer(self._settings)
                    self._open.push_async_callback(producer.stop)
                    await producer.start()
                    self._commands = await self._open.enter_async_context(
                        StoreCommands(self._settings, producer, requested_by="gateway"))
                except BaseException:
                    await self._open.aclose()
                    raise
            return self._commands

    async def close(self) -> None:
        async with self._opening:
            self._commands = None
            await self._open.aclose()


class CallbackRoute(Route):
    """The callback route, with what the gateway's lifespan keeps running (`running`): the pending-links view, and
    the line to the stores owner (closed when the app stops)."""

    def __init__(self, endpoint: Callable[[Request], Awaitable[HTMLResponse]], links: PendingLinks,
                 requests: LinkRequests, settings: Settings) -> None:
        super().__init__(CALLBACK_PATH, endpoint, methods=["GET"])
        self.links = links
        self.requests = requests
        self._settings = settings

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.links.following(self._settings):
            try:
                yield
            finally:
                await self.requests.close()


def oauth_routes(settings: Settings, *, links: PendingLinks | None = None, throttle: ClientThrottle | None = None,
                 pending_wait_s: float = PENDING_WAIT_S, answer_wait_s: float | None = None) -> list[Route]:
    """The callback route (mounted through `create_app(extra_routes=...)`, whose lifespan runs `running()`);
    `answer_wait_s` is how long a seller's page waits for the owner (default SHOPSYNC_STORE_COMMAND_TIMEOUT_S)."""
    links = links if links is not None else PendingLinks()
    throttle = throttle or ClientThrottle()
    requests = LinkRequests(settings)
    wait_s = answer_wait_s if answer_wait_s is not None else settings.shopsync_store_command_timeout_s

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
        pending = await links.wait_for(state, pending_wait_s)
        if pending is None:
            return _page(400, *UNKNOWN)
        links.take(state)  # single use, whatever happens next: refused here at once, by the owner elsewhere
        command = Link(state=state, code=code, chosen_shop_id=shop_id)
        try:
            commands = await requests.commands()
            if pending.state_expires_at < time.time():  # the owner uses it up; the seller needs no answer from it
                await commands.send(command)
                return _page(400, "Link expired", "This authorization link has expired (30 minutes). "
                             "Run `shopsync stores link` again.")
            result = await commands.request(command, wait=wait_s)
        except OwnerNotAnswering as exc:
            log.warning("store_link_waiting", nickname=pending.nickname, command_id=exc.command.command_id)
            return _page(202, "Linking in progress", "TikTok's authorization reached shopsync, but the store is not "
                         f"linked yet (no answer within {wait_s:g} s). It is linked as soon as shopsync's stores "
                         "service gets to it: check with `shopsync stores list`.")
        except (KafkaError, OSError) as exc:
            links.give_back(pending)  # nothing was sent: the link can be used again
            log.error("store_link_not_sent", error=exc.__class__.__name__)
            return _page(503, "Try again", "shopsync could not take the authorization just now. Reload this page "
                         "in a few seconds.", headers={"Retry-After": "5"})
        return _answer_page(result, pending)

    return [CallbackRoute(callback, links, requests, settings)]


def _answer_page(result: CommandResult, pending: StoreRecord) -> HTMLResponse:
    """The seller's page for the owner's answer to the link."""
    if result.status == APPLIED:
        return _page(200, "Store linked", result.message)
    if result.status == CHOICE_NEEDED:
        return _choice_page(result, pending.nickname)
    status, title = FAILURE_PAGES.get(result.reason, (400, "Linking failed"))
    return _page(status, title, result.message)


def _choice_page(choice: CommandResult, nickname: str) -> HTMLResponse:
    """One link per shop the authorization covers; following one links that shop (valid 30 minutes, once)."""
    items = "".join(
        f"<li><a href='?{html.escape(urlencode({'state': choice.choice_state, 'shop_id': s['id']}))}'>"
        f"{html.escape(s['name'])}</a> — region {html.escape(s['region'])}, "
        f"{html.escape(s.get('seller_type') or 'shop')}, shop id {html.escape(s['id'])}</li>"
        for s in choice.shops)
    title = "Choose the shop to link"
    body = (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body><h1>{title}</h1>"
            f"<p>This authorization covers {len(choice.shops)} shops. Pick the one to link as "
            f"&quot;{html.escape(nickname)}&quot; (the link works once, for 30 minutes); to link "
            "another one too, run <code>shopsync stores link --region REGION</code> again.</p>"
            f"<ul>{items}</ul></body></html>")
    return HTMLResponse(body, status_code=200)


def _page(status: int, title: str, message: str, headers: dict[str, str] | None = None) -> HTMLResponse:
    body = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>")
    return HTMLResponse(body, status_code=status, headers=headers)

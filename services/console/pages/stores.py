"""Stores: the linked stores with status and settings, Connect a store, Update store orders."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.console.ports import ChangeRefused, StorePatch
from services.console.web import Console, see_other
from shared.stores.model import DEAUTHORIZED, EXPIRING, LINKED, NEEDS_RELINK, StoreRecord

UPDATE_WINDOW_S = 24 * 3600  # "Update store orders" looks this far back, as `shopsync sync` does by default


def status_text(store: StoreRecord) -> str:
    """Linked, deauthorized, authorization expiring (with the date), needs re-link."""
    if store.status == EXPIRING:
        when = (datetime.fromtimestamp(store.authorization_expires_at, UTC).strftime("%Y-%m-%d")
                if store.authorization_expires_at else "soon")
        return f"authorization expiring {when}"
    return {LINKED: "linked", DEAUTHORIZED: "deauthorized", NEEDS_RELINK: "needs re-link"}.get(store.status,
                                                                                               store.status)


def routes(console: Console) -> list[Route]:
    sessions, stores = console.sessions, console.stores

    def page(request: Request, notice: str = "", problem: str = "", status_code: int = 200) -> Response:
        listed = sorted(stores.list(), key=lambda s: s.nickname.casefold())
        return console.render(request, "stores.html", status_code=status_code, stores=listed, notice=notice,
                              problem=problem, status_text=status_text)

    async def show(request: Request) -> Response:
        return page(request, notice=request.query_params.get("notice", ""))

    async def change(request: Request) -> Response:
        posted = await sessions.checked_form(request)
        try:
            buffer = int(str(posted.get("inventory_buffer", "0")))
        except ValueError:
            return page(request, problem="The inventory buffer must be a whole number.", status_code=400)
        patch = StorePatch(auto_sync_orders="auto_sync_orders" in posted,
                           auto_sync_shipments="auto_sync_shipments" in posted,
                           auto_sync_inventory="auto_sync_inventory" in posted, inventory_buffer=buffer)
        try:
            message = await stores.change(request.path_params["shop_id"], patch)
        except ChangeRefused as exc:
            return page(request, problem=str(exc), status_code=409)
        return page(request, notice=message)

    async def update_orders(request: Request) -> Response:
        await sessions.checked_form(request)
        try:
            job = stores.start_update(request.path_params["shop_id"], UPDATE_WINDOW_S)
        except ChangeRefused as exc:
            return page(request, problem=str(exc), status_code=409)
        return see_other(f"/stores/updates/{job.job_id}")

    async def updating(request: Request) -> Response:
        job = stores.update(request.path_params["job_id"])
        if job is None:
            raise HTTPException(404, "No such update of store orders: press Update store orders again.")
        return console.render(request, "updating.html", job=job)

    async def connect(request: Request) -> Response:
        posted = await sessions.checked_form(request)
        try:
            link = await stores.begin_link(str(posted.get("nickname", "")), str(posted.get("warehouse", "")),
                                           str(posted.get("region", "")))
        except ChangeRefused as exc:
            return page(request, problem=str(exc), status_code=400)
        return see_other(f"/stores/connect/{link.state}")

    async def connecting(request: Request) -> Response:
        outcome = stores.link_outcome(request.path_params["state"])
        if outcome is None:
            raise HTTPException(404, "No connection in progress under this link: connect the store again.")
        return console.render(request, "connect.html", outcome=outcome)

    return [Route("/stores", show, methods=["GET"]),
            Route("/stores/connect", connect, methods=["POST"]),
            Route("/stores/connect/{state}", connecting, methods=["GET"]),
            Route("/stores/{shop_id}/settings", change, methods=["POST"]),
            Route("/stores/{shop_id}/update-orders", update_orders, methods=["POST"]),
            Route("/stores/updates/{job_id}", updating, methods=["GET"])]

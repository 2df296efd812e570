"""Sync (recent shipment and stock outcomes, failures first) and Operations (dead letters, replay, lag, health).

Every change here is counted first (a dry run) and done only when confirmed on the page that shows the count."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.console.ports import ChangeRefused
from services.console.web import Console

REPLAY_WINDOWS = {"1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600, "7d": 7 * 24 * 3600}


def routes(console: Console) -> list[Route]:
    sessions, operator = console.sessions, console.operator

    async def sync(request: Request) -> Response:
        results = await operator.sync_results()
        results.sort(key=lambda r: (r.get("status") != "failed", str(r.get("at", ""))))
        product = request.query_params.get("product_code", "").strip()
        stock = await operator.inventory_status(product) if product else None
        return console.render(request, "sync.html", results=results, product=product, stock=stock)

    async def page(request: Request, status_code: int = 200, notice: str = "", problem: str = "") -> Response:
        letters = await operator.dead_letters()
        lag, health = await operator.lag(), await operator.health()
        return console.render(request, "operations.html", status_code=status_code, letters=letters, lag=lag,
                              health=health, notice=notice, problem=problem, windows=list(REPLAY_WINDOWS))

    async def show(request: Request) -> Response:
        return await page(request)

    async def redrive(request: Request) -> Response:
        posted = await sessions.checked_form(request)
        reason, confirmed = str(posted.get("reason", "")), posted.get("confirm") == "yes"
        count = await operator.redrive(reason, dry_run=not confirmed)
        if confirmed:
            return await page(request, notice=f"Redriven {count} dead letters to their source topics.")
        return console.render(request, "confirm.html", action="/operations/redrive", count=count,
                              what=f"dead letter(s){' with reason ' + reason if reason else ''} would be redriven",
                              fields={"reason": reason})

    async def replay(request: Request) -> Response:
        posted = await sessions.checked_form(request)
        shop = str(posted.get("shop_id", "")).strip() or None
        window = str(posted.get("window", "24h"))
        only_incomplete = posted.get("only_incomplete") in ("on", "yes")
        confirmed = posted.get("confirm") == "yes"
        from_s = time.time() - REPLAY_WINDOWS.get(window, REPLAY_WINDOWS["24h"])
        try:
            counted = await operator.replay(shop, from_s, only_incomplete, dry_run=not confirmed)
        except ChangeRefused as exc:
            return await page(request, status_code=400, problem=str(exc))
        if confirmed:
            return await page(request, notice=f"Replayed {counted.replayed} orders ({counted.changed} changed).")
        return console.render(request, "confirm.html", action="/operations/replay", count=counted.changed,
                              what=f"order(s) would be re-enriched (of {counted.selected} selected)",
                              fields={"shop_id": shop or "", "window": window,
                                      "only_incomplete": "yes" if only_incomplete else ""})

    return [Route("/sync", sync, methods=["GET"]), Route("/operations", show, methods=["GET"]),
            Route("/operations/redrive", redrive, methods=["POST"]),
            Route("/operations/replay", replay, methods=["POST"])]

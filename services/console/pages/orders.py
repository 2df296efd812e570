"""Orders: one order's timeline and verdict with the fix (`shopsync explain`), and "Why no orders?"."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.console.ports import ChangeRefused
from services.console.web import Console

WHY_NONE_WINDOW_S = 24 * 3600


def routes(console: Console) -> list[Route]:
    operator = console.operator

    async def search(request: Request) -> Response:
        order_id = request.query_params.get("order_id", "").strip()
        explained, problem = None, ""
        if order_id:
            try:
                explained = await operator.explain(order_id)
            except ChangeRefused as exc:
                problem = str(exc)
        return console.render(request, "orders.html", order_id=order_id, explained=explained, problem=problem)

    async def why_none(request: Request) -> Response:
        try:
            groups, problem = await operator.skipped_since(WHY_NONE_WINDOW_S), ""
        except ChangeRefused as exc:
            groups, problem = [], str(exc)
        return console.render(request, "why_none.html", groups=groups, problem=problem)

    return [Route("/orders", search, methods=["GET"]), Route("/orders/why-none", why_none, methods=["GET"])]

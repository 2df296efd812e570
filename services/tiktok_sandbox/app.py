"""`create_app(config)`: the sandbox as one Starlette app (TikTok's API incl. shipping and inventory + auth host +
control API)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from services.tiktok_sandbox.api import ApiError, Faults, OpenApi, envelope
from services.tiktok_sandbox.config import SandboxConfig
from services.tiktok_sandbox.control import Control
from services.tiktok_sandbox.fulfillment_api import FulfillmentApi
from services.tiktok_sandbox.pusher import WebhookPusher
from services.tiktok_sandbox.sellers import SellerControl
from services.tiktok_sandbox.world import World, WorldError


def create_app(config: SandboxConfig) -> Starlette:
    world = World(seed=config.seed)
    faults = Faults()
    api = OpenApi(world, config, faults)
    pusher = WebhookPusher(config)
    control = Control(world, api, pusher, faults)
    fulfillment = FulfillmentApi(world, api, pusher)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return envelope(code=exc.code, message=exc.message, http_status=exc.http_status)

    async def world_error(_: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "bad_request", "detail": str(exc)}, status_code=400)

    async def not_found(request: Request, _: Exception) -> Response:
        """TikTok answers an unknown path with 36009009 "Invalid path" (common errors)."""
        if request.url.path.startswith("/sandbox/"):
            return JSONResponse({"error": "not_found", "detail": request.url.path}, status_code=404)
        return envelope(code=36009009, message=f"Invalid path: {request.url.path}", http_status=404)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await control.stop()
        await pusher.aclose()

    routes = [*api.routes(), *SellerControl(world).routes(), *fulfillment.routes(), *control.routes(),
              Route("/healthz", healthz)]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={ApiError: api_error, WorldError: world_error, 404: not_found})
    app.state.world, app.state.pusher, app.state.faults, app.state.api = world, pusher, faults, api
    return app

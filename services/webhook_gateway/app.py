"""The gateway's Starlette app: `POST /webhooks/tiktok`, health, readiness and metrics."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from services.webhook_gateway.body import ReadDeadlines
from services.webhook_gateway.metrics import GatewayMetrics
from services.webhook_gateway.publisher import Publisher
from services.webhook_gateway.receiver import WebhookReceiver
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger("webhook_gateway")
WEBHOOK_PATH = "/webhooks/tiktok"


class MissingSecrets(RuntimeError):
    """The gateway fails closed: it will not start without an app key and secret."""


@runtime_checkable
class RunningRoute(Protocol):
    """An extra route that needs something running while the app serves (the OAuth callback's store view)."""

    def running(self) -> contextlib.AbstractAsyncContextManager[None]: ...


def create_app(settings: Settings, publisher: Publisher, *, extra_routes: Sequence[BaseRoute] = (),
               clock: Callable[[], float] = time.time, metrics: GatewayMetrics | None = None) -> Starlette:
    """Build the gateway app around `publisher`; raises MissingSecrets when the app key or secret is empty.

    At most `SHOPSYNC_GATEWAY_MAX_CONCURRENT` webhook requests are in progress at once (the next get 503 +
    `Retry-After` before their body is read), and a body must arrive within `SHOPSYNC_GATEWAY_READ_TIMEOUT_S`
    (else 408), so slow or stalled uploads hold at most that many bodies of at most the size limit.
    """
    app_key = settings.tiktok_app_key
    secrets = [s for s in (settings.tiktok_app_secret.get_secret_value(),
                           settings.tiktok_app_secret_previous.get_secret_value()) if s]
    if not app_key or not secrets:
        raise MissingSecrets("TIKTOK_APP_KEY and TIKTOK_APP_SECRET must be set: the gateway refuses unsigned intake")
    metrics = metrics or GatewayMetrics()
    deadlines = ReadDeadlines(settings.shopsync_gateway_read_timeout_s)
    receiver = WebhookReceiver(settings, publisher, metrics, deadlines, clock)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(_: Request) -> Response:
        problem = await publisher.readiness_problem()
        if problem is None:
            return PlainTextResponse("ready")
        return PlainTextResponse(f"not ready: {problem}", status_code=503)

    async def metrics_endpoint(_: Request) -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await publisher.start()
        log.info("gateway_started", kafka_problem=await publisher.readiness_problem())
        try:
            async with contextlib.AsyncExitStack() as stack:
                for route in extra_routes:
                    if isinstance(route, RunningRoute):
                        await stack.enter_async_context(route.running())
                yield
        finally:
            await deadlines.stop()
            await publisher.stop()  # flushes queued records before exit
            log.info("gateway_stopped")

    routes: list[BaseRoute] = [
        Route(WEBHOOK_PATH, receiver, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *extra_routes,
    ]
    app = GatewayApp(receiver, routes=routes, lifespan=lifespan)
    app.state.metrics = metrics
    app.state.publisher = publisher
    return app


class GatewayApp(Starlette):
    """The Starlette app, except that `POST /webhooks/tiktok` goes straight to the receiver (no middleware,
    routing or request objects: about a third of a request's CPU); anything else takes Starlette's way."""

    def __init__(self, receiver: WebhookReceiver, **options: Any) -> None:
        super().__init__(**options)
        self._receiver = receiver

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == WEBHOOK_PATH and scope["method"] == "POST":
            await self._receiver(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

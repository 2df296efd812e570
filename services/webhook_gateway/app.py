"""The gateway's Starlette app: `POST /webhooks/tiktok`, health, readiness and metrics."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol, runtime_checkable

from prometheus_client import Counter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from services.webhook_gateway.body import BodyTimeout, BodyTooLarge, ReadDeadlines, read_limited_body
from services.webhook_gateway.envelope import InvalidWebhook, parse_webhook, record_headers
from services.webhook_gateway.metrics import GatewayMetrics
from services.webhook_gateway.publisher import Publisher, PublishFailed
from shared.logging import get_logger
from shared.settings import Settings
from shared.tiktok.signing import verify_webhook
from shared.tracing import new_traceparent, trace_id

log = get_logger("webhook_gateway")
RETRY_AFTER_S = "5"
OVERLOADED_RETRY_AFTER_S = "1"
CLOSE = {"Connection": "close"}  # the rest of an unread body is not worth waiting for


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
    limit = settings.shopsync_max_webhook_bytes
    deadlines = ReadDeadlines(settings.shopsync_gateway_read_timeout_s)
    max_in_flight = settings.shopsync_gateway_max_concurrent
    in_flight = 0

    counters: dict[str, Counter] = {}

    async def receive_webhook(request: Request) -> Response:
        nonlocal in_flight
        started = time.perf_counter()
        if in_flight >= max_in_flight:
            result, response = "overloaded", Response(status_code=503, headers={
                "Retry-After": OVERLOADED_RETRY_AFTER_S, **CLOSE})
        else:
            in_flight += 1
            try:
                result, response = await _receive(request)
            finally:
                in_flight -= 1
        if (counter := counters.get(result)) is None:
            counter = counters[result] = metrics.requests.labels(result=result)
        counter.inc()
        metrics.request_seconds.observe(time.perf_counter() - started)
        return response

    async def _receive(request: Request) -> tuple[str, Response]:
        try:
            body = await read_limited_body(request, limit, deadlines)
        except BodyTooLarge:
            log.warning("webhook_rejected", result="too_large", limit=limit)
            return "too_large", _error(413, "payload_too_large", f"body exceeds {limit} bytes")
        except BodyTimeout:
            log.warning("webhook_rejected", result="read_timeout", timeout_s=deadlines.timeout_s)
            return "read_timeout", _error(408, "read_timeout", f"body not received within {deadlines.timeout_s} s",
                                          headers=CLOSE)
        metrics.payload_bytes.observe(len(body))
        if not verify_webhook(app_key, secrets, body, request.headers.get("authorization")):
            metrics.signature_failures.inc()
            log.warning("webhook_rejected", result="bad_signature", size=len(body))
            return "bad_signature", Response(status_code=401)
        now = clock()
        try:
            webhook = parse_webhook(body, now, settings.shopsync_webhook_max_age_s,
                                    settings.shopsync_webhook_max_future_s)
        except InvalidWebhook as exc:
            log.warning("webhook_rejected", result=exc.code, detail=exc.detail)
            return exc.code, _error(400, exc.code, exc.detail)
        traceparent = new_traceparent()
        context = {"notification_id": webhook.notification_id, "shop_id": webhook.shop_id,
                   "order_id": webhook.order_id, "event_type": webhook.type, "trace_id": trace_id(traceparent)}
        publish_started = time.perf_counter()
        try:
            await publisher.publish(webhook.key.encode(), body, record_headers(webhook, body, now, traceparent))
        except PublishFailed as exc:
            log.error("webhook_not_published", result="unavailable", reason=str(exc), **context)
            return "unavailable", Response(status_code=503, headers={"Retry-After": RETRY_AFTER_S})
        elapsed = time.perf_counter() - publish_started
        metrics.publish_seconds.observe(elapsed)
        log.info("webhook_published", result="published", latency_ms=round(elapsed * 1000, 2), **context)
        return "published", Response(status_code=200)

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
        Route("/webhooks/tiktok", receive_webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *extra_routes,
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.metrics = metrics
    app.state.publisher = publisher
    return app


def _error(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)

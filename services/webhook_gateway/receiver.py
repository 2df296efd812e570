"""`POST /webhooks/tiktok` as a plain ASGI app: verify, validate, publish, answer 200 once Kafka acknowledged.

It is the gateway's hot path, so it skips what Starlette would add per request (middleware, routing, `Request` and
`Response` objects): the answers are built once at start-up from Starlette `Response`s (so their bytes and headers
are exactly Starlette's), and only a 400's detail is rendered per request. The same app serves as the endpoint of
the Starlette route, which answers whatever `GatewayApp` does not send here directly (a `root_path`, a trailing
slash, another method).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry.trace import SpanKind, Tracer
from prometheus_client import Counter
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from structlog.typing import FilteringBoundLogger

from services.webhook_gateway.body import BodyTimeout, BodyTooLarge, ReadDeadlines, read_limited_body
from services.webhook_gateway.envelope import InvalidWebhook, Received, RecordHeaders, parse_webhook
from services.webhook_gateway.metrics import GatewayMetrics
from services.webhook_gateway.publisher import Publisher, PublishFailed
from shared.logging import get_logger
from shared.settings import Settings
from shared.telemetry import traceparent_of, tracer
from shared.tiktok.signing import verify_webhook
from shared.tracing import new_traceparent, trace_id

log = get_logger("webhook_gateway")
RETRY_AFTER_S = "5"
OVERLOADED_RETRY_AFTER_S = "1"
CLOSE = {"Connection": "close"}  # the rest of an unread body is not worth waiting for
DEBUG = 10  # logging.DEBUG


@dataclass(frozen=True, slots=True)
class Answer:
    """A response as ASGI sends it: status, raw headers, body."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    @classmethod
    def of(cls, response: Response) -> Answer:
        return cls(response.status_code, response.raw_headers, bytes(response.body))

    async def send(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


def error_answer(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Answer:
    """The JSON error body `{"error", "detail"}` every 4xx with a reason carries."""
    return Answer.of(JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers))


class WebhookReceiver:
    """The webhook endpoint; at most `SHOPSYNC_GATEWAY_MAX_CONCURRENT` requests in progress (the next get 503 +
    `Retry-After` before their body is read), each body within `SHOPSYNC_GATEWAY_READ_TIMEOUT_S` (else 408)."""

    def __init__(self, settings: Settings, publisher: Publisher, metrics: GatewayMetrics, deadlines: ReadDeadlines,
                 clock: Callable[[], float]) -> None:
        self._app_key = settings.tiktok_app_key
        self._secrets = [s for s in (settings.tiktok_app_secret.get_secret_value(),
                                     settings.tiktok_app_secret_previous.get_secret_value()) if s]
        self._max_age_s = settings.shopsync_webhook_max_age_s
        self._max_future_s = settings.shopsync_webhook_max_future_s
        self._limit = settings.shopsync_max_webhook_bytes
        self._max_in_flight = settings.shopsync_gateway_max_concurrent
        self._in_flight = 0
        self._publisher = publisher
        self._metrics = metrics
        self._deadlines = deadlines
        self._clock = clock
        self._headers = RecordHeaders()
        self._tracer: Tracer | None = tracer()  # None: tracing off, and no span is made (see shared.telemetry)
        self._counters: dict[str, Counter] = {}
        self._log: FilteringBoundLogger | None = None  # resolved on first use: logging is configured by then
        self._log_published = False
        self._published = Answer.of(Response(status_code=200))
        self._bad_signature = Answer.of(Response(status_code=401))
        self._overloaded = Answer.of(Response(status_code=503, headers={"Retry-After": OVERLOADED_RETRY_AFTER_S,
                                                                        **CLOSE}))
        self._unavailable = Answer.of(Response(status_code=503, headers={"Retry-After": RETRY_AFTER_S}))
        self._too_large = error_answer(413, "payload_too_large", f"body exceeds {self._limit} bytes")
        self._read_timeout = error_answer(408, "read_timeout", f"body not received within {deadlines.timeout_s} s",
                                          headers=CLOSE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        if self._in_flight >= self._max_in_flight:
            result, answer = "overloaded", self._overloaded
        else:
            self._in_flight += 1
            try:
                if self._tracer is None:
                    result, answer = await self._receive(scope, receive)
                else:
                    with self._tracer.start_as_current_span("webhook receive", kind=SpanKind.SERVER) as span:
                        result, answer = await self._receive(scope, receive)
                        span.set_attribute("shopsync.result", result)
            finally:
                self._in_flight -= 1
        if (counter := self._counters.get(result)) is None:
            counter = self._counters[result] = self._metrics.requests.labels(result=result)
        counter.inc()
        self._metrics.request_seconds.observe(time.perf_counter() - started)
        await answer.send(send)

    async def _receive(self, scope: Scope, receive: Receive) -> tuple[str, Answer]:
        authorization = declared = None
        for name, value in scope["headers"]:
            if name == b"authorization" and authorization is None:
                authorization = value
            elif name == b"content-length" and declared is None:
                declared = value
        try:
            body = await read_limited_body(receive, declared, self._limit, self._deadlines)
        except BodyTooLarge:
            log.warning("webhook_rejected", result="too_large", limit=self._limit)
            return "too_large", self._too_large
        except BodyTimeout:
            log.warning("webhook_rejected", result="read_timeout", timeout_s=self._deadlines.timeout_s)
            return "read_timeout", self._read_timeout
        self._metrics.payload_bytes.observe(len(body))
        header = authorization.decode("latin-1") if authorization is not None else None  # as Starlette reads it
        if not verify_webhook(self._app_key, self._secrets, body, header):
            self._metrics.signature_failures.inc()
            log.warning("webhook_rejected", result="bad_signature", size=len(body))
            return "bad_signature", self._bad_signature
        now = self._clock()
        try:
            webhook = parse_webhook(body, now, self._max_age_s, self._max_future_s)
        except InvalidWebhook as exc:
            log.warning("webhook_rejected", result=exc.code, detail=exc.detail)
            return exc.code, error_answer(400, exc.code, exc.detail)
        if self._tracer is None:
            return await self._publish(webhook, body, now, new_traceparent())
        with self._tracer.start_as_current_span("publish", kind=SpanKind.PRODUCER) as span:
            return await self._publish(webhook, body, now, traceparent_of(span))  # the record continues this span

    async def _publish(self, webhook: Received, body: bytes, now: float, traceparent: str) -> tuple[str, Answer]:
        publish_started = time.perf_counter()
        try:
            await self._publisher.publish(webhook.key.encode(), body,
                                          self._headers.of(webhook, body, now, traceparent))
        except PublishFailed as exc:
            log.error("webhook_not_published", result="unavailable", reason=str(exc),
                      notification_id=webhook.notification_id, shop_id=webhook.shop_id, order_id=webhook.order_id,
                      event_type=webhook.type, trace_id=trace_id(traceparent))
            return "unavailable", self._unavailable
        elapsed = time.perf_counter() - publish_started
        self._metrics.publish_seconds.observe(elapsed)
        if self._log is None:
            self._log = log.bind()
            self._log_published = self._log.is_enabled_for(DEBUG)
        if self._log_published:  # one line per request is a debug line, not an info one
            self._log.debug("webhook_published", result="published", latency_ms=round(elapsed * 1000, 2),
                            notification_id=webhook.notification_id, shop_id=webhook.shop_id,
                            order_id=webhook.order_id, event_type=webhook.type, trace_id=trace_id(traceparent))
        return "published", self._published

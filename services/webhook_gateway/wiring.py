"""Build the production gateway app from settings (a uvicorn factory: each worker gets its own producer)."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from services.webhook_gateway.app import create_app
from services.webhook_gateway.metrics import GatewayMetrics
from services.webhook_gateway.oauth import oauth_routes
from services.webhook_gateway.publisher import KafkaPublisher
from shared.kafka import create_managed_producer
from shared.logging import configure_logging
from shared.process import tune_gc
from shared.settings import Settings, load_settings
from shared.telemetry import configure_tracing
from shared.topics import TIKTOK_WEBHOOKS, topic_name


def build_app(settings: Settings, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The gateway wired to Kafka."""
    metrics = GatewayMetrics()
    producer = create_managed_producer(settings, "gateway", metrics.registry, linger_ms=1,
                                       request_timeout_ms=int(settings.shopsync_publish_timeout_s * 1000) + 500)
    publisher = KafkaPublisher(producer, topic_name(TIKTOK_WEBHOOKS, settings.shopsync_topic_prefix),
                               settings.shopsync_publish_timeout_s)
    return create_app(settings, publisher, extra_routes=extra_routes, metrics=metrics)


def app_factory() -> Starlette:
    """uvicorn `--factory` entry point: settings from the environment."""
    settings = load_settings()
    configure_logging(settings.shopsync_log_level,
                      "json" if settings.shopsync_log_format == "auto" else settings.shopsync_log_format)
    configure_tracing("shopsync-gateway")  # before the app: the receiver reads the tracer once
    app = build_app(settings, extra_routes=oauth_routes(settings))
    tune_gc()
    return app


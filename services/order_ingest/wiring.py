"""The ingest's collaborators, built from settings (inside the running event loop), and its admin app."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette

from services.order_ingest.fetch import ingest_policy
from services.order_ingest.metrics import IngestMetrics
from services.order_ingest.service import GROUP, IngestService
from shared.admin import admin_app
from shared.kafka import create_consumer, create_managed_producer
from shared.settings import Settings
from shared.tiktok.client import TikTokClient
from shared.tiktok.retry import sleep_unless_stopped
from shared.topics import topic_name


def build_service(settings: Settings, tiktok: TikTokClient | None = None,
                  stop: asyncio.Event | None = None) -> IngestService:
    """The service with its own producer and consumer; `tiktok` defaults to a client with the ingest's retry
    policy (no attempt limit) whose backoff ends with the service; `stop` (default: a new event) stops it."""
    metrics, stop = IngestMetrics(), stop or asyncio.Event()
    tiktok = tiktok or TikTokClient.from_settings(settings, retry=ingest_policy(settings),
                                                  sleep=sleep_unless_stopped(stop), metrics=metrics.tiktok)
    return IngestService(settings, producer=create_managed_producer(settings, "ingest", metrics.registry),
                         consumer=create_consumer(settings, topic_name(GROUP, settings.shopsync_topic_prefix),
                                                   lag=metrics.lag),
                         tiktok=tiktok, metrics=metrics, stop=stop)


def ingest_app(settings: Settings) -> Starlette:
    """The admin app (`/healthz`, `/readyz`, `/metrics`) whose lifespan runs the service."""
    return admin_app("ingest", lambda: build_service(settings))

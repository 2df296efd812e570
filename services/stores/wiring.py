"""The stores owner's collaborators, built from settings (inside the running event loop), and its admin app."""

from __future__ import annotations

from starlette.applications import Starlette

from services.stores.metrics import StoresMetrics
from services.stores.service import GROUP, WEBHOOKS_GROUP, StoresService
from shared.admin import admin_app
from shared.kafka import create_consumer, create_managed_producer
from shared.settings import Settings
from shared.tiktok.client import TikTokClient
from shared.topics import topic_name


def build_service(settings: Settings) -> StoresService:
    prefix = settings.shopsync_topic_prefix
    metrics = StoresMetrics()
    return StoresService(settings, producer=create_managed_producer(settings, "stores", metrics.registry),
                         consumer=create_consumer(settings, topic_name(GROUP, prefix), lag=metrics.lag),
                         webhooks=create_consumer(settings, topic_name(WEBHOOKS_GROUP, prefix), lag=metrics.lag),
                         tiktok=TikTokClient.from_settings(settings, metrics=metrics.tiktok), metrics=metrics)


def owner_app(settings: Settings) -> Starlette:
    """The admin port (`/healthz`, `/readyz`, `/metrics`) whose lifespan runs the owner."""
    return admin_app("stores_owner", lambda: build_service(settings))

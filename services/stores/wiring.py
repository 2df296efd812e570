"""The stores owner's collaborators, built from settings (inside the running event loop), and its admin app."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer
from starlette.applications import Starlette

from services.stores.metrics import StoresMetrics
from services.stores.service import GROUP, WEBHOOKS_GROUP, StoresService
from shared.admin import admin_app
from shared.kafka import BATCHED_FETCHES, create_consumer, create_managed_producer
from shared.kafka_metrics import ConsumerLag
from shared.settings import Settings
from shared.tiktok.client import TikTokClient
from shared.topics import topic_name


def build_service(settings: Settings) -> StoresService:
    prefix = settings.shopsync_topic_prefix
    metrics = StoresMetrics()
    return StoresService(settings, producer=create_managed_producer(settings, "stores", metrics.registry),
                         consumer=create_consumer(settings, topic_name(GROUP, prefix), lag=metrics.lag),
                         webhooks=webhook_feed_consumer(settings, metrics.lag),
                         tiktok=TikTokClient.from_settings(settings, metrics=metrics.tiktok), metrics=metrics)


def webhook_feed_consumer(settings: Settings, lag: ConsumerLag | None = None) -> AIOKafkaConsumer:
    """The authorization feed's consumer of `tiktok.webhooks` (not started): it reads every webhook for the rare
    ones of types 6 and 7, so its fetches are batched."""
    return create_consumer(settings, topic_name(WEBHOOKS_GROUP, settings.shopsync_topic_prefix), lag=lag,
                           **BATCHED_FETCHES)


def owner_app(settings: Settings) -> Starlette:
    """The admin port (`/healthz`, `/readyz`, `/metrics`) whose lifespan runs the owner."""
    return admin_app("stores_owner", lambda: build_service(settings))

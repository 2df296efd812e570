"""Shared fixtures: the real local Kafka broker (started through the CLI's own code) and per-test topic prefixes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from shared.kafka import create_admin
from shared.settings import Settings, load_settings
from shared.topic_admin import ensure_topics
from shopsync.localkafka import LocalKafka


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[str]:
    """Ensure a broker is up for the session; stop it afterwards only if this session started it."""
    settings = load_settings()
    if not settings.uses_local_kafka:
        yield settings.bootstrap_servers
        return
    broker = LocalKafka.from_settings(settings)
    started = broker.start()
    yield broker.bootstrap
    if started:
        broker.stop()


@pytest.fixture
def topic_prefix() -> str:
    """A fresh prefix, so each test sees its own empty topics."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
async def settings(kafka_broker: str, topic_prefix: str) -> AsyncIterator[Settings]:
    """Settings pointing at the session broker with this test's topics created; topics deleted afterwards."""
    s = load_settings(
        kafka_bootstrap_servers=kafka_broker,
        shopsync_topic_prefix=topic_prefix,
        tiktok_app_key="test-app-key",
        tiktok_app_secret="test-app-secret",
    )
    await ensure_topics(s)
    yield s
    await delete_prefixed_topics(s)


async def delete_prefixed_topics(settings: Settings) -> None:
    """Remove every topic under the settings' prefix (best effort)."""
    admin = create_admin(settings)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(settings.shopsync_topic_prefix)]
        if names:
            await asyncio.wait_for(admin.delete_topics(names), 10)
    except Exception:  # noqa: BLE001 - cleanup must not fail a test
        pass
    finally:
        await admin.close()

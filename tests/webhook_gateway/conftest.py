"""Gateway fixtures: the app with a real Kafka publisher, a signer, and a reader for the webhooks topic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import orjson
import pytest

from services.webhook_gateway.publisher import KafkaPublisher, PublishFailed
from services.webhook_gateway.wiring import build_app
from shared.kafka import create_consumer
from shared.settings import Settings
from shared.tiktok.signing import webhook_signature
from shared.topics import TIKTOK_WEBHOOKS

APP_KEY = "test-app-key"
APP_SECRET = "test-app-secret-0123456789abcdef0123"  # the gateway refuses secrets under 32 characters


def webhook_body(order_id: str | None = "576461413038785752", *, notification_id: str | None = "7327112393057371910",
                 event_type: int = 1, timestamp: int | None = None, shop_id: str = "7494049642642441621") -> bytes:
    """A TikTok-shaped type-1 webhook body."""
    doc: dict = {"type": event_type, "shop_id": shop_id, "timestamp": timestamp or int(time.time()),
                 "data": {"order_status": "AWAITING_SHIPMENT", "is_on_hold_order": False,
                          "update_time": int(time.time())}}
    if order_id is not None:
        doc["data"]["order_id"] = order_id
    if notification_id is not None:
        doc["tts_notification_id"] = notification_id
    return orjson.dumps(doc)


def sign(body: bytes, secret: str = APP_SECRET, key: str = APP_KEY) -> dict[str, str]:
    return {"Authorization": webhook_signature(key, secret, body), "Content-Type": "application/json"}


@dataclass
class MemoryPublisher:
    """An in-memory stand-in for narrow unit tests (signature/validation paths)."""

    records: list[tuple[bytes, bytes, list]] = field(default_factory=list)
    fail: bool = False

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def readiness_problem(self) -> str | None:
        return "down" if self.fail else None

    async def publish(self, key: bytes, value: bytes, headers: list) -> None:
        if self.fail:
            raise PublishFailed("down")
        self.records.append((key, value, headers))


@pytest.fixture
def memory_publisher() -> MemoryPublisher:
    return MemoryPublisher()


@pytest.fixture
async def unit_client(settings: Settings, memory_publisher: MemoryPublisher) -> AsyncIterator[httpx.AsyncClient]:
    from services.webhook_gateway.app import create_app

    app = create_app(settings, memory_publisher)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        yield client


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app wired to the session broker (lifespan run by hand: ASGITransport does not run it)."""
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            yield client


async def read_webhooks(settings: Settings, expected: int, idle_s: float = 1.0) -> list:
    """Every record on the webhooks topic: waits for `expected`, then for `idle_s` more to catch extras."""
    consumer = create_consumer(settings, None, TIKTOK_WEBHOOKS)
    await consumer.start()
    records: list = []
    try:
        async with asyncio.timeout(60):
            while len(records) < expected:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(batch)
        for batch in (await consumer.getmany(timeout_ms=int(idle_s * 1000))).values():
            records.extend(batch)
    finally:
        await consumer.stop()
    return records


__all__ = ["APP_KEY", "APP_SECRET", "KafkaPublisher", "read_webhooks", "sign", "webhook_body"]

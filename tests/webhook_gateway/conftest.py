"""Gateway fixtures: the app over an in-memory publisher (no broker, no topics), and the app wired to the broker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.webhook_gateway.app import create_app
from services.webhook_gateway.wiring import build_app
from shared.settings import Settings, load_settings
from tests.fakes import MemoryPublisher
from tests.sandbox import APP_KEY, APP_SECRET


@pytest.fixture
def gateway_settings() -> Settings:
    """Settings for a gateway whose publisher is in memory: the app key and secret, nothing on a broker."""
    return load_settings(tiktok_app_key=APP_KEY, tiktok_app_secret=APP_SECRET)


@pytest.fixture
def memory_publisher() -> MemoryPublisher:
    return MemoryPublisher()


@pytest.fixture
async def unit_client(gateway_settings: Settings, memory_publisher: MemoryPublisher
                      ) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway app over `memory_publisher`, called in-process."""
    app = create_app(gateway_settings, memory_publisher)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        yield client


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app wired to the session broker (lifespan run by hand: ASGITransport does not run it)."""
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            yield client

"""Shared fixtures: the real local Kafka broker (started through the CLI's own code), per-test topic prefixes, the
TikTok sandbox, and the end-to-end harnesses several folders use (ingest, mapping); and the two test tiers."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.tiktok_sandbox.app import create_app as create_sandbox_app
from services.tiktok_sandbox.config import SandboxConfig
from shared.settings import Settings, load_settings
from shared.tiktok.client import TikTokClient
from shared.tiktok.retry import RetryPolicy
from shopsync.localkafka import LocalKafka
from shopsync.topic_admin import delete_prefixed_topics, ensure_topics
from tests.ingest_harness import Harness, running_harness
from tests.mapping_harness import MappingHarness, admin_token, running_mapping
from tests.sandbox import APP_KEY, APP_SECRET, Sandbox
from tests.servers import serve_app

# ---- the two tiers ---------------------------------------------------------------------------------------------
# `make test` runs every test; `make test-unit` runs `pytest -m "not integration"`: the tests that need no Kafka
# broker, no TikTok sandbox and no other process. A test is marked `integration` below when one of its fixtures
# (directly or through another fixture) starts or reaches one of those, or when it carries a marker that does; a
# test that starts a broker or a process in its own body says so with `@pytest.mark.integration`, and in the unit
# tier starting a process fails the test (`refuse_processes_in_the_unit_tier`).
INTEGRATION_FIXTURES = frozenset({"kafka_broker", "cluster", "sandbox"})  # and every fixture named `*_broker`
INTEGRATION_MARKERS = ("slow", "secured", "cluster")


def needs_integration(item: pytest.Item) -> bool:
    fixtures = set(getattr(item, "fixturenames", ()))
    return (bool(fixtures & INTEGRATION_FIXTURES) or any(name.endswith("_broker") for name in fixtures)
            or any(item.get_closest_marker(marker) for marker in INTEGRATION_MARKERS))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if needs_integration(item):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def refuse_processes_in_the_unit_tier(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit-tier test that starts a process fails at once, naming the marker it lacks."""
    if request.node.get_closest_marker("integration") is not None:
        return

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"{request.node.nodeid} starts a process: mark it @pytest.mark.integration")

    monkeypatch.setattr(subprocess, "Popen", refuse)


# ---- the broker --------------------------------------------------------------------------------------------------
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
async def settings(kafka_broker: str, topic_prefix: str, tmp_path: Path) -> AsyncIterator[Settings]:
    """Settings pointing at the session broker with this test's topics created (and its own local state
    directory); topics deleted afterwards."""
    s = load_settings(
        kafka_bootstrap_servers=kafka_broker,
        shopsync_topic_prefix=topic_prefix,
        shopsync_state_dir=tmp_path / "state",
        tiktok_app_key=APP_KEY,
        tiktok_app_secret=APP_SECRET,
        tiktok_allow_http=True,  # the sandbox serves plain http
    )
    await ensure_topics(s)
    yield s
    try:
        await asyncio.wait_for(delete_prefixed_topics(s), 10)
    except Exception:  # a broker the test stopped or broke: the prefix is unique, the leftovers harm nobody
        pass


# ---- the TikTok sandbox ------------------------------------------------------------------------------------------
@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    """The project's TikTok sandbox on a free port; retries scaled so 2 min becomes 0.2 s."""
    config = SandboxConfig(app_key=APP_KEY, app_secret=APP_SECRET, time_factor=600.0)
    app = create_sandbox_app(config)
    async with serve_app(app) as url:
        yield Sandbox(url, config, app)


@pytest.fixture
async def tiktok_client(sandbox: Sandbox) -> AsyncIterator[TikTokClient]:
    """A client pointed at the sandbox (both API and auth host)."""
    client = TikTokClient(app_key=APP_KEY, app_secret=APP_SECRET, api_base=sandbox.base_url,
                          auth_base=sandbox.base_url, retry=RetryPolicy(attempts=9))
    yield client
    await client.aclose()


# ---- the end-to-end harnesses --------------------------------------------------------------------------------------
@pytest.fixture
async def harness(settings: Settings, sandbox: Sandbox) -> AsyncIterator[Harness]:
    """Sandbox → gateway (real HTTP) → Kafka, ready to link stores; `harness.start_ingest()` adds the ingest."""
    async with running_harness(settings, sandbox) as h:
        yield h


@pytest.fixture
def mapping_settings(settings: Settings) -> Settings:
    """The session broker's settings with the mapping admin API's token."""
    return admin_token(settings)


@pytest.fixture
async def mapping(mapping_settings: Settings) -> AsyncIterator[MappingHarness]:
    """The mapping service and its admin API under uvicorn, ready."""
    async with running_mapping(mapping_settings) as m:
        yield m

"""The webhook gateway against the secured broker: signed webhooks land; wrong credentials mean 503, not a hang."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from services.webhook_gateway.wiring import build_app
from shared.envelope import header_map
from shared.settings import Settings
from shopsync.localkafka import SecuredLocalKafka
from tests.security.conftest import GATEWAY_SECRETS
from tests.waiting import eventually
from tests.webhooks import published_webhooks, sign, webhook_body

pytestmark = pytest.mark.secured
FAST_S = 10.0


@contextlib.asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running (ASGITransport does not run it), and a client for it."""
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        yield client


@pytest.fixture
async def wrong_password_gateway(secured_broker: SecuredLocalKafka) -> AsyncIterator[httpx.AsyncClient]:
    settings = secured_broker.client_settings(kafka_sasl_password="not-the-password", shopsync_topic_prefix="wrong.",
                                              **GATEWAY_SECRETS)
    async with serve(build_app(settings)) as client:
        yield client


async def test_signed_webhook_is_answered_200_and_lands_on_the_topic(secured_settings: Settings) -> None:
    body = webhook_body(notification_id="secured-1")
    async with serve(build_app(secured_settings)) as gateway:
        async def ready() -> bool:  # readiness asks the broker within 1 s: a loaded machine may miss once
            return (await gateway.get("/readyz")).status_code == 200

        await eventually(ready, within=FAST_S, every=0.2, what="the gateway ready")
        assert (await gateway.post("/webhooks/tiktok", content=body, headers=sign(body))).status_code == 200
    records = await published_webhooks(secured_settings)
    assert [(r.value, header_map(r.headers)["ce_id"]) for r in records] == [(body, "secured-1")]


async def test_wrong_password_makes_readyz_503_and_webhooks_503_quickly(
        wrong_password_gateway: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    started = time.monotonic()
    ready = await wrong_password_gateway.get("/readyz")
    assert ready.status_code == 503 and ready.text.startswith("not ready: ")
    body = webhook_body(notification_id="never-published")
    answer = await wrong_password_gateway.post("/webhooks/tiktok", content=body, headers=sign(body))
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert time.monotonic() - started < FAST_S
    with caplog.at_level(logging.ERROR):
        await wrong_password_gateway.post("/webhooks/tiktok", content=body, headers=sign(body))
    assert any("SaslAuthenticationFailed" in record.getMessage() for record in caplog.records)
    assert not any("not-the-password" in record.getMessage() for record in caplog.records)


async def test_wrong_password_readyz_names_authentication(wrong_password_gateway: httpx.AsyncClient) -> None:
    ready = await wrong_password_gateway.get("/readyz")
    assert ready.status_code == 503 and "authentication failed" in ready.text

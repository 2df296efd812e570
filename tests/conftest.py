"""Shared fixtures: the real local Kafka broker (started through the CLI's own code) and per-test topic prefixes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from shared.settings import Settings, load_settings
from shared.topic_admin import delete_prefixed_topics, ensure_topics
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
        tiktok_app_secret=SANDBOX_APP_SECRET,
        tiktok_allow_http=True,  # the sandbox serves plain http
    )
    await ensure_topics(s)
    yield s
    await _cleanup(s)


async def _cleanup(settings: Settings) -> None:
    try:
        await asyncio.wait_for(delete_prefixed_topics(settings), 10)
    except Exception:
        pass


# ---- the TikTok sandbox -------------------------------------------------------------------------------------
from dataclasses import dataclass  # noqa: E402
from urllib.parse import parse_qs, urlparse  # noqa: E402

import httpx  # noqa: E402

from services.tiktok_sandbox.app import create_app as create_sandbox_app  # noqa: E402
from services.tiktok_sandbox.config import SandboxConfig  # noqa: E402
from shared.tiktok.client import TikTokClient  # noqa: E402
from shared.tiktok.models import ShopAuth  # noqa: E402
from tests.servers import serve_app  # noqa: E402

SANDBOX_APP_KEY = "test-app-key"
SANDBOX_APP_SECRET = "test-app-secret-0123456789abcdef0123"  # services refuse secrets under 32 characters
US_SHOP = "7494049642642441621"
MY_SHOP = "7494049642642441622"


@dataclass
class Sandbox:
    """A running sandbox: its URL, config and in-process state, plus control-API helpers."""

    base_url: str
    config: SandboxConfig
    app: object

    @property
    def world(self):  # type: ignore[no-untyped-def]
        return self.app.state.world  # type: ignore[attr-defined]

    async def control(self, method: str, path: str, json: object = None) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as http:
            return await http.request(method, path, json=json)

    async def authorize(self, client: TikTokClient, shop_id: str = US_SHOP) -> ShopAuth:
        """The OAuth dance for `shop_id`, returning credentials for shop-scoped calls."""
        async with httpx.AsyncClient(base_url=self.base_url) as http:
            answer = await http.get("/open/authorize", params={
                "service_id": self.config.service_id, "state": "s", "shop_id": shop_id,
                "redirect_uri": "http://127.0.0.1:9/callback"})
        code = parse_qs(urlparse(answer.headers["location"]).query)["code"][0]
        grant = await client.get_token(code)
        shop = next(s for s in await client.get_authorized_shops(grant.access_token) if s.id == shop_id)
        return ShopAuth(shop.id, shop.cipher, grant.access_token)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    """The project's TikTok sandbox on a free port; retries scaled so 2 min becomes 0.2 s."""
    config = SandboxConfig(app_key=SANDBOX_APP_KEY, app_secret=SANDBOX_APP_SECRET, time_factor=600.0)
    app = create_sandbox_app(config)
    async with serve_app(app) as url:
        yield Sandbox(url, config, app)


@pytest.fixture
async def tiktok_client(sandbox: Sandbox) -> AsyncIterator[TikTokClient]:
    """A client pointed at the sandbox (both API and auth host)."""
    client = TikTokClient(app_key=SANDBOX_APP_KEY, app_secret=SANDBOX_APP_SECRET, api_base=sandbox.base_url,
                          auth_base=sandbox.base_url, max_retries=8)
    yield client
    await client.aclose()

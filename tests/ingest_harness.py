"""The end-to-end ingest harness: sandbox → gateway (real HTTP) → Kafka → ingest service, stores linked through
OAuth. The `harness` fixture (tests/conftest.py) yields one; the fault tests build their own on a private broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import orjson

from services.order_ingest.fetch import ingest_policy
from services.order_ingest.service import GROUP, IngestService
from services.order_ingest.wiring import build_service
from services.webhook_gateway.oauth import oauth_routes
from services.webhook_gateway.publisher import PublishFailed
from services.webhook_gateway.wiring import build_app
from shared.admin import serve
from shared.kafka import create_producer
from shared.settings import Settings
from shared.stores.commands import BeginLink, open_store_commands
from shared.stores.crypto import generate_key
from shared.stores.linking import new_pending_link
from shared.stores.table import StoreTable, StoreWriter
from shared.tiktok.client import TikTokClient
from shared.tiktok.retry import RetryPolicy
from shared.topics import TIKTOK_WEBHOOKS
from tests.sandbox import Sandbox
from tests.servers import serve_app
from tests.stores.owner import running_owner
from tests.topicview import consumed_to_end

HARNESS_RETRY = RetryPolicy(attempts=4)  # a test client gives up soon; the ingest's own has no limit


@dataclass
class Harness:
    settings: Settings
    sandbox: Sandbox
    gateway_url: str
    service: IngestService | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    refuse: Callable[[dict[str, Any]], bool] = lambda doc: False  # webhooks the gateway answers 503 to

    def client(self, retry: RetryPolicy = HARNESS_RETRY) -> TikTokClient:
        return TikTokClient(app_key=self.sandbox.config.app_key, app_secret=self.sandbox.config.app_secret,
                            api_base=self.sandbox.base_url, auth_base=self.sandbox.base_url, retry=retry)

    async def link(self, nickname: str = "Main store", warehouse: str = "LA Warehouse", shop_id: str | None = None,
                   **options: Any) -> httpx.Response:
        """The seller's journey: `stores link`, consent at TikTok, the redirect to our callback."""
        record, url = new_pending_link(self.settings, nickname, warehouse, **options)
        async with open_store_commands(self.settings, "test") as commands:  # as `stores link` does
            assert (await commands.request(BeginLink(record=record))).status == "applied"
        state = parse_qs(urlparse(url).query)["state"][0]
        async with httpx.AsyncClient() as http:
            params = {"service_id": self.sandbox.config.service_id, "state": state}
            if shop_id:
                params["shop_id"] = shop_id
            consent = await http.get(self.sandbox.base_url + "/open/authorize", params=params)
            return await http.get(consent.headers["location"])

    async def start_ingest(self) -> None:
        self.service = build_service(self.settings, self.client(ingest_policy(self.settings)), self.stop)
        self.task = asyncio.get_running_loop().create_task(serve(self.service))

    async def create_order(self, **spec: Any) -> dict[str, Any]:
        answer = await self.sandbox.control("POST", "/sandbox/orders", spec)
        assert answer.status_code == 201, answer.text
        order: dict[str, Any] = answer.json()
        return order

    async def move(self, order_id: str, status: str) -> dict[str, Any]:
        order: dict[str, Any] = (await self.sandbox.control("POST", f"/sandbox/orders/{order_id}/status",
                                                            {"status": status})).json()
        return order

    async def stores(self) -> StoreTable:
        return await StoreTable().load(self.settings)

    async def ingest_caught_up(self, copies: int = 1) -> bool:
        """Every push the sandbox made was answered (`copies` times each, with duplicate webhooks on) and the
        ingest committed every webhook record: all it will publish for them is on its topics."""
        for push in await self.sandbox.pushes():
            if not (push["dropped"] or push["gave_up"] or push["answers"].count(200) >= copies):
                return False
        return await consumed_to_end(self.settings, GROUP, TIKTOK_WEBHOOKS)


async def write_store(settings: Settings, record: Any) -> None:
    producer = create_producer(settings)
    await producer.start()
    try:
        await StoreWriter(producer, settings).put(record)
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def running_harness(settings: Settings, sandbox: Sandbox) -> AsyncIterator[Harness]:
    """The gateway serving the sandbox's pushes and OAuth redirects; the ingest stopped on exit if started."""
    s = settings.model_copy(update={
        "shopsync_secret_key": type(settings.shopsync_secret_key)(generate_key()),
        "tiktok_service_id": sandbox.config.service_id, "tiktok_authorize_url": sandbox.base_url + "/open/authorize",
        "shopsync_reconcile_interval_s": 0.0, "shopsync_coalesce_ms": 20})
    h = Harness(s, sandbox, "")
    app = build_app(s, extra_routes=oauth_routes(s))
    publisher = app.state.publisher
    publish = publisher.publish

    async def refusing(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        if h.refuse(orjson.loads(value)):  # as if Kafka did not answer: the gateway's own 503 path
            raise PublishFailed("refused by the test")
        await publish(key, value, headers)

    publisher.publish = refusing
    async with running_owner(s, h.client()), serve_app(app) as url:  # the owner links, the gateway asks it
        h.gateway_url = url
        await sandbox.control("POST", "/sandbox/config", {"webhook_url": url + "/webhooks/tiktok",
                                                          "redirect_url": url + "/oauth/tiktok/callback"})
        try:
            yield h
        finally:
            h.stop.set()
            if h.task is not None:
                await h.task

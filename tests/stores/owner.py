"""A stores owner for tests: the real service on the test's topics, with a scripted TikTok; and readers of what it
wrote and answered."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from pydantic import SecretStr

from services.stores.service import GROUP, StoresService
from services.stores.wiring import webhook_feed_consumer
from shared.kafka import create_consumer, create_managed_producer, create_producer, read_to_end
from shared.settings import Settings
from shared.stores.crypto import generate_key
from shared.stores.model import StoreRecord
from shared.stores.table import StoreWriter
from shared.tiktok.client import TikTokClient
from shared.topics import STORE_RESULTS, STORES, topic_name
from tests.fakes import FakeTikTok
from tests.waiting import eventually


class ScriptedTikTok(FakeTikTok):
    """FakeTikTok as the owner's client: closable, and its token refreshes can be held (`hold_refreshes`) so a
    test can act while one is in flight."""

    def __init__(self, **fields: Any) -> None:
        super().__init__(**fields)
        self.refresh_started = asyncio.Event()
        self.release_refresh = asyncio.Event()
        self.release_refresh.set()

    def hold_refreshes(self) -> None:
        self.release_refresh.clear()

    async def refresh_token(self, refresh_token: str) -> Any:
        self.refresh_started.set()
        await self.release_refresh.wait()
        return await super().refresh_token(refresh_token)

    async def aclose(self) -> None: ...


def with_key(settings: Settings, keys: str | None = None) -> Settings:
    """`settings` with SHOPSYNC_SECRET_KEY set (a new key unless given)."""
    return settings.model_copy(update={"shopsync_secret_key": SecretStr(keys or generate_key())})


def owner(settings: Settings, tiktok: TikTokClient | FakeTikTok) -> StoresService:
    """A stores owner in the group every test instance of these topics shares; `tiktok` is the sandbox's client
    or a scripted one."""
    prefix = settings.shopsync_topic_prefix
    return StoresService(settings, producer=create_managed_producer(settings, "stores-test"),
                         consumer=create_consumer(settings, topic_name(GROUP, prefix)),
                         webhooks=webhook_feed_consumer(settings),  # as wired: its fetches batched
                         tiktok=tiktok)  # type: ignore[arg-type]  # a scripted TikTok answers the calls the owner makes


@contextlib.asynccontextmanager
async def running(service: StoresService) -> AsyncIterator[asyncio.Task[None]]:
    """`service` entered and running until the block ends (the task, so a test can cancel it: a kill)."""

    async def run() -> None:
        async with service:
            await service.run()

    task = asyncio.get_running_loop().create_task(run())
    try:
        async with asyncio.timeout(60):
            while not service.ready.is_set():
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
        yield task
    finally:
        service.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def running_owner(settings: Settings, tiktok: TikTokClient | FakeTikTok | None = None
                        ) -> AsyncIterator[StoresService]:
    """One stores owner running on `settings`' topics (it closes `tiktok` when it stops)."""
    service = owner(settings, tiktok or ScriptedTikTok())
    async with running(service):
        yield service


async def seed(settings: Settings, *records: StoreRecord) -> None:
    """Records put on `shopsync.stores` as they are (a table that existed before the owner)."""
    producer = create_producer(settings)
    await producer.start()
    try:
        for record in records:
            await StoreWriter(producer, settings).put(record)
    finally:
        await producer.stop()


async def history(settings: Settings, key: str) -> list[dict[str, Any]]:
    """Every record written under `key` on `shopsync.stores`, oldest first."""
    return [orjson.loads(r.value) async for r in read_to_end(settings, STORES)
            if r.key == key.encode() and r.value is not None]


async def answers(settings: Settings) -> list[dict[str, Any]]:
    """Every answer on `shopsync.store-results`, in order per partition."""
    return [orjson.loads(r.value) async for r in read_to_end(settings, STORE_RESULTS) if r.value is not None]


async def answer_to(settings: Settings, command_id: str) -> dict[str, Any]:
    """The owner's answer to `command_id`, once it is on `shopsync.store-results`."""
    async def found() -> dict[str, Any] | None:
        return next((a for a in await answers(settings) if a["command_id"] == command_id), None)
    result = await eventually(found, within=30, what=f"the owner's answer to {command_id}")
    assert result is not None
    return result


async def publish(settings: Settings, topic: str, key: str, value: dict[str, Any],
                  headers: list[tuple[str, bytes]] | None = None) -> None:
    producer = create_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(topic_name(topic, settings.shopsync_topic_prefix), orjson.dumps(value),
                                     key=key.encode(), headers=headers or [])
    finally:
        await producer.stop()

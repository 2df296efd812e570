"""Read a topic from the beginning in tests, polling until a condition holds."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from shared.kafka import create_consumer, read_to_end
from shared.settings import Settings


class TopicView:
    """Records of one topic read from the beginning, polled until a condition holds."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.consumer = create_consumer(settings, None, topic)
        self.records: list[Any] = []

    async def __aenter__(self) -> TopicView:
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def until(self, predicate: Any, timeout: float = 40.0) -> list[Any]:
        async with asyncio.timeout(timeout):
            while not predicate(self.records):
                for batch in (await self.consumer.getmany(timeout_ms=100)).values():
                    self.records.extend(batch)
        return self.records

    def values(self) -> list[dict[str, Any]]:
        return [orjson.loads(r.value) for r in self.records if r.value is not None]

    def latest(self) -> dict[str, dict[str, Any]]:
        return {r.key.decode(): orjson.loads(r.value) for r in self.records if r.value is not None}

    async def poll(self) -> list[Any]:
        """Fetch whatever has arrived since the last read."""
        for batch in (await self.consumer.getmany(timeout_ms=200)).values():
            self.records.extend(batch)
        return self.records


async def everything(settings: Settings, topic: str) -> list[dict[str, Any]]:
    """Every value on `topic` up to its end now (for "nothing else arrived" checks, no waiting)."""
    return [orjson.loads(r.value) async for r in read_to_end(settings, topic) if r.value is not None]

"""Read a topic from the beginning in tests, polling until a condition holds; and whether a group has read a topic."""

from __future__ import annotations

from typing import Any

import orjson
from aiokafka import TopicPartition

from shared.kafka import create_admin, create_consumer, partitions_of, read_to_end
from shared.settings import Settings
from shared.topics import topic_name
from tests.waiting import eventually


class TopicView:
    """Records of one topic read from the beginning, polled until a condition holds."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = topic
        self.consumer = create_consumer(settings, None, topic)
        self.records: list[Any] = []

    async def __aenter__(self) -> TopicView:
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def until(self, predicate: Any, *, within: float = 40.0) -> list[Any]:
        """Every record so far, once `predicate(records)` holds (reading on while it does not)."""

        async def holds() -> bool:
            if predicate(self.records):
                return True
            await self.poll(timeout_ms=100)
            return bool(predicate(self.records))

        await eventually(holds, within=within, every=0,
                         what=lambda: f"the condition on {self.topic} ({len(self.records)} records read)")
        return self.records

    def values(self) -> list[dict[str, Any]]:
        return [orjson.loads(r.value) for r in self.records if r.value is not None]

    def latest(self) -> dict[str, dict[str, Any]]:
        return {r.key.decode(): orjson.loads(r.value) for r in self.records if r.value is not None}

    async def poll(self, timeout_ms: int = 200) -> list[Any]:
        """Fetch whatever has arrived since the last read."""
        for batch in (await self.consumer.getmany(timeout_ms=timeout_ms)).values():
            self.records.extend(batch)
        return self.records


async def everything(settings: Settings, topic: str) -> list[dict[str, Any]]:
    """Every value on `topic` up to its end now (for "nothing else arrived" checks, no waiting)."""
    return [orjson.loads(r.value) async for r in read_to_end(settings, topic) if r.value is not None]


async def consumed_to_end(settings: Settings, group: str, topic: str) -> bool:
    """Whether consumer group `group` (its base name) has committed every partition of `topic` up to its end.

    The services commit a record only once its outputs are acknowledged, so when this holds everything they
    will ever publish for the records on `topic` so far is on their output topics: read those to their end.
    """
    admin = create_admin(settings)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(topic_name(group, settings.shopsync_topic_prefix))
    finally:
        await admin.close()
    reader = create_consumer(settings, None)
    await reader.start()
    try:
        name = topic_name(topic, settings.shopsync_topic_prefix)
        ends = await reader.end_offsets([TopicPartition(name, p) for p in sorted(await partitions_of(reader, name))])
    finally:
        await reader.stop()
    return all(end == 0 or (tp in committed and committed[tp].offset >= end) for tp, end in ends.items())

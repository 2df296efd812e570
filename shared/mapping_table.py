"""The mapping table: every instance materializes all of `shopsync.mappings` (it is small) and follows it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson

from shared.kafka import create_consumer, read_to_end
from shared.logging import get_logger
from shared.mappings import Mapping
from shared.settings import Settings
from shared.topics import MAPPINGS

log = get_logger("mappings.table")


class MappingTable:
    def __init__(self) -> None:
        self.mappings: dict[str, Mapping] = {}
        self._offsets: dict[str, int] = {}  # offset of the last record applied per key

    def apply(self, key: str, mapping: Mapping | None, offset: int | None = None) -> bool:
        """Apply one record; True when the table changed (a new version, or a delete of an existing key).

        A record at or before the last offset applied for its key is ignored: the follower re-reading the topic
        must not briefly revert a write this instance already applied.
        """
        if offset is not None:
            if offset <= self._offsets.get(key, -1):
                return False
            self._offsets[key] = offset
        current = self.mappings.get(key)
        if mapping is None:
            return self.mappings.pop(key, None) is not None
        if current == mapping:
            return False
        self.mappings[key] = mapping
        return True

    def offsets(self) -> dict[str, int]:
        """Mapping key → offset of the last record applied for it (deletes included: a tombstone is a change)."""
        return dict(self._offsets)

    def offset_of(self, key: str) -> int:
        """Offset of the last record applied for `key`, -1 if none."""
        return self._offsets.get(key, -1)

    def apply_record(self, key: bytes | None, value: bytes | None, offset: int | None = None) -> str | None:
        """Apply a Kafka record; the key when the table changed."""
        if key is None:
            return None
        text = key.decode("utf-8", "replace")
        try:
            mapping = Mapping.from_dict(orjson.loads(value)) if value is not None else None
        except (ValueError, KeyError, TypeError) as exc:
            log.error("mapping_record_unreadable", key=text, error=str(exc))
            return None
        return text if self.apply(text, mapping, offset) else None

    async def load(self, settings: Settings) -> None:
        async for record in read_to_end(settings, MAPPINGS):
            self.apply_record(record.key, record.value, record.offset)

    async def follow(self, settings: Settings, stop: asyncio.Event,
                     on_change: Callable[[str], Awaitable[None]]) -> None:
        """Apply records as they arrive (from the start: idempotent) and call `on_change` for each change."""
        consumer = create_consumer(settings, None, MAPPINGS)
        await consumer.start()
        try:
            while not stop.is_set():
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for record in records:
                        changed = self.apply_record(record.key, record.value, record.offset)
                        if changed is not None:
                            await on_change(changed)
        finally:
            await consumer.stop()

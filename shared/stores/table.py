"""The store table: materialized from the compacted `shopsync.stores` topic, written through a producer."""

from __future__ import annotations

import asyncio
import time

import orjson

from shared.envelope import CloudEvent, rfc3339, to_headers
from shared.kafka import create_consumer, read_to_end
from shared.logging import get_logger
from shared.producer import Sender, deliver
from shared.settings import Settings
from shared.stores.model import PENDING_KEY_PREFIX, StoreRecord
from shared.topics import STORES, topic_name

log = get_logger("stores")


class StoreTable:
    """shop id → record, and pending links by state; `load` reads the topic to its end, `follow` keeps up."""

    def __init__(self) -> None:
        self.stores: dict[str, StoreRecord] = {}
        self.pending: dict[str, StoreRecord] = {}

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        text = key.decode("utf-8", "replace")
        target, name = ((self.pending, text[len(PENDING_KEY_PREFIX):]) if text.startswith(PENDING_KEY_PREFIX)
                        else (self.stores, text))
        if value is None:
            target.pop(name, None)
            return
        try:
            target[name] = StoreRecord.from_dict(orjson.loads(value))
        except (ValueError, TypeError) as exc:
            log.error("store_record_unreadable", key=text, error=str(exc))

    async def load(self, settings: Settings) -> StoreTable:
        async for record in read_to_end(settings, STORES):
            self.apply(record.key, record.value)
        return self

    async def follow(self, settings: Settings, stop: asyncio.Event) -> None:
        """Apply new store records as they arrive (no consumer group: every instance sees every store)."""
        consumer = create_consumer(settings, None, STORES)  # from the start: idempotent, closes the load→follow gap
        await consumer.start()
        try:
            while not stop.is_set():
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        self.apply(record.key, record.value)
        finally:
            await consumer.stop()

    def find(self, shop: str) -> StoreRecord | None:
        """By shop id, or by nickname (case-insensitive) for operator commands."""
        if shop in self.stores:
            return self.stores[shop]
        wanted = shop.casefold()
        return next((s for s in self.stores.values() if s.nickname.casefold() == wanted), None)


class StoreWriter:
    """Writes store records (acked) to `shopsync.stores`."""

    def __init__(self, producer: Sender, settings: Settings) -> None:
        self._producer = producer
        self._topic = topic_name(STORES, settings.shopsync_topic_prefix)

    async def put(self, store: StoreRecord) -> None:
        store.updated_at = int(time.time())
        value = orjson.dumps(store.to_dict())
        event = CloudEvent(id=f"{store.key}:{store.updated_at}:{time.time_ns()}", source="shopsync/stores",
                           type=f"shopsync.store.{store.status}", data=value, time=rfc3339(time.time()),
                           subject=store.key)
        await deliver(self._producer, self._topic, value, store.key.encode(), to_headers(event))

    async def delete(self, key: str) -> None:
        await deliver(self._producer, self._topic, None, key.encode())

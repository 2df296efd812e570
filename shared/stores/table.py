"""The store table: materialized from the compacted `shopsync.stores` topic (written by the stores owner alone)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import orjson
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from shared.envelope import CloudEvent, rfc3339, to_headers
from shared.kafka import create_consumer, partitions_of, read_to_end
from shared.logging import get_logger
from shared.producer import Sender, deliver
from shared.settings import Settings
from shared.stores.model import PENDING_KEY_PREFIX, StoreRecord
from shared.topics import STORES, topic_name

log = get_logger("stores")


class TableNotUpdated(TimeoutError):
    """The table did not show the revision waited for in time (is it followed? is the stores owner running?)."""


class StoreTable:
    """shop id → record, and pending links by state; `load` reads the topic to its end, `follow` keeps up.

    `follow` resumes where `load` stopped (per partition), so a follower never replays older records over newer
    ones; without a `load` it reads from the start.
    """

    def __init__(self) -> None:
        self.stores: dict[str, StoreRecord] = {}
        self.pending: dict[str, StoreRecord] = {}
        self.positions: dict[int, int] = {}  # partition → next offset to apply
        self._updated = asyncio.Event()

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

    def apply_record(self, record: ConsumerRecord) -> None:
        """Apply one record of the topic and remember how far its partition has been read."""
        if record.offset < self.positions.get(record.partition, 0):
            return  # already applied (a follower restarted where it stood)
        self.apply(record.key, record.value)
        self.positions[record.partition] = record.offset + 1

    def changed(self) -> None:
        """Wake whoever waits for the table to change (`wait_for_revision`)."""
        self._updated.set()
        self._updated = asyncio.Event()

    async def load(self, settings: Settings) -> StoreTable:
        async for record in read_to_end(settings, STORES):
            self.apply_record(record)
        self.changed()
        return self

    async def follow(self, settings: Settings, stop: asyncio.Event) -> None:
        """Apply new store records as they arrive (no consumer group: every instance sees every store)."""
        consumer = create_consumer(settings, None)
        await consumer.start()
        try:
            name = topic_name(STORES, settings.shopsync_topic_prefix)
            partitions = [TopicPartition(name, p) for p in sorted(await partitions_of(consumer, name))]
            consumer.assign(partitions)
            for tp in partitions:
                consumer.seek(tp, self.positions.get(tp.partition, 0))
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        self.apply_record(record)
                moved = bool(batches)
                for tp in partitions:  # past compacted-away offsets too, so "read up to the end" can be told
                    position = await consumer.position(tp)
                    if position > self.positions.get(tp.partition, 0):
                        self.positions[tp.partition], moved = position, True
                if moved:
                    self.changed()
        finally:
            await consumer.stop()

    @contextlib.asynccontextmanager
    async def following(self, settings: Settings) -> AsyncIterator[None]:
        """Follow the topic while the block runs (a one-shot command that waits for the owner's writes)."""
        stop = asyncio.Event()
        task = asyncio.get_running_loop().create_task(self.follow(settings, stop))
        try:
            yield
        finally:
            stop.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait_for_revision(self, shop_id: str, above: int, timeout_s: float) -> StoreRecord:
        """The shop's record once its revision is above `above`; TableNotUpdated after `timeout_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (store := self.stores.get(shop_id)) is None or store.revision <= above:
            updated = self._updated
            if loop.time() >= deadline:
                raise TableNotUpdated(f"the store table did not show revision {above + 1} of store {shop_id} within "
                                      f"{timeout_s:g} s (is the table followed?)")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await updated.wait()
        return store

    async def wait_read_to(self, ends: dict[int, int], timeout_s: float) -> None:
        """Return once the follower has read every partition up to `ends` (partition → offset); TableNotUpdated
        after `timeout_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while any(self.positions.get(p, 0) < end for p, end in ends.items()):
            updated = self._updated
            if loop.time() >= deadline:
                raise TableNotUpdated(f"the store table was not read up to {ends} within {timeout_s:g} s")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await updated.wait()

    def find(self, shop: str) -> StoreRecord | None:
        """By shop id, or by nickname (case-insensitive) for operator commands."""
        if shop in self.stores:
            return self.stores[shop]
        wanted = shop.casefold()
        return next((s for s in self.stores.values() if s.nickname.casefold() == wanted), None)


class StoreWriter:
    """Writes store records (acked) to `shopsync.stores`, as they are given.

    Not for production code: the stores owner (`services/stores`) is the one writer of the topic and everyone else
    asks it through `shared.stores.commands`. Tests and benchmarks use this to seed a table.
    """

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

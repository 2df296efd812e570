"""The owner's view of `shopsync.stores`: the whole table (every instance reads all of it), with its own writes.

A command must be decided against a view that holds every earlier write to its record. The owner's own writes are
applied here as soon as the broker acknowledges them (read-your-writes); the follower, which reads the same records
a moment later, skips a key's records up to the offset already applied. On a partition assignment the service
waits until the follower has read the topic up to its end offsets of that moment, so the writes of the instance
that owned those partitions before are in the view before any of their commands is decided.
"""

from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from shared.envelope import header_map
from shared.kafka import create_consumer, partitions_of
from shared.settings import Settings
from shared.stores.model import PENDING_KEY_PREFIX, StoreRecord
from shared.stores.table import StoreTable
from shared.topics import STORES, topic_name

COMMAND_HEADER = "shopsync_command_id"  # on every record the owner writes: the command that wrote it


class OwnerView(StoreTable):
    def __init__(self) -> None:
        super().__init__()
        self.written: dict[str, int] = {}  # key → offset of the last own write applied here
        self.last_command: dict[str, str] = {}  # key → the command that wrote its newest record

    def record(self, key: str) -> StoreRecord | None:
        """The record under a topic key (a shop id, or `pending:{state}`)."""
        if key.startswith(PENDING_KEY_PREFIX):
            return self.pending.get(key[len(PENDING_KEY_PREFIX):])
        return self.stores.get(key)

    def apply_record(self, record: ConsumerRecord) -> None:
        key = record.key.decode("utf-8", "replace") if record.key is not None else ""
        if record.offset <= self.written.get(key, -1):  # this instance applied it (or something newer) already
            self.positions[record.partition] = max(self.positions.get(record.partition, 0), record.offset + 1)
            return
        super().apply_record(record)
        if (command_id := header_map(record.headers).get(COMMAND_HEADER)) is not None:
            self.last_command[key] = command_id

    def apply_own(self, key: str, value: bytes | None, offset: int, command_id: str) -> None:
        """A write of this instance, acknowledged at `offset`: in the view before the next command is decided."""
        self.apply(key.encode(), value)
        self.written[key] = offset
        self.last_command[key] = command_id
        self.changed()


async def end_offsets(settings: Settings) -> dict[int, int]:
    """partition → end offset of `shopsync.stores` now."""
    consumer = create_consumer(settings, None)
    await consumer.start()
    try:
        name = topic_name(STORES, settings.shopsync_topic_prefix)
        partitions = [TopicPartition(name, p) for p in sorted(await partitions_of(consumer, name))]
        return {tp.partition: offset for tp, offset in (await consumer.end_offsets(partitions)).items()}
    finally:
        await consumer.stop()

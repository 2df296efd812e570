"""Which orders this ingest instance decides, and the published state it must know before deciding them.

An order's webhooks and its `orders.ingested` records share the key `{shop_id}:{order_id}`, so with equal partition
counts they share the partition number too. An instance owns the orders of its assigned `tiktok.webhooks`
partitions; on every assignment it reloads, from `orders.ingested`, what was published for them, before it
decides any of their records (another instance may have accepted them since this one started: without the
reload a cancellation would be skipped instead of withdrawn). When the counts differ it reloads every partition.
It also reloads the notification ids the group finished recently on them, so a webhook TikTok delivers again
after a restart or a rebalance is still acted on once.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.structs import TopicPartition

from services.order_ingest.outputs import OrderOutputs
from shared.dedupe import NotificationWindow, recent_notifications
from shared.kafka import partitions_of
from shared.logging import get_logger
from shared.partitioner import murmur2
from shared.settings import Settings
from shared.topics import ORDERS_INGESTED, TIKTOK_WEBHOOKS, topic_name

log = get_logger("order_ingest.ownership")


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives `key` among `partitions`."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class Ownership(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no type information
    """The rebalance listener of the ingest consumer; `restored` is set once the owned state is loaded."""

    def __init__(self, settings: Settings, consumer: AIOKafkaConsumer, outputs: OrderOutputs,
                 notifications: NotificationWindow) -> None:
        self.settings, self.consumer, self.outputs = settings, consumer, outputs
        self.notifications = notifications
        self.restored = asyncio.Event()
        self.partitions: set[int] = set()
        self.count = 0  # partitions of tiktok.webhooks
        self._webhooks = topic_name(TIKTOK_WEBHOOKS, settings.shopsync_topic_prefix)
        self._ingested = topic_name(ORDERS_INGESTED, settings.shopsync_topic_prefix)

    def owns(self, key: str) -> bool:
        """Whether this instance decides the order with this key now."""
        return bool(self.count) and partition_of(key, self.count) in self.partitions

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.restored.clear()
        gone = {tp.partition for tp in revoked}
        self.partitions -= gone
        await self.outputs.flush()  # what was decided is on the topic before the next owner reads it
        if self.count:
            self.outputs.forget(lambda key: partition_of(key, self.count) in gone)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.restored.clear()
        try:
            new = {tp.partition for tp in assigned}
            self.count = len(self.consumer.partitions_for_topic(self._webhooks) or ())
            same = len(await partitions_of(self.consumer, self._ingested)) == self.count
            loaded = await self.outputs.restore(self.settings, new if same else None) if new else 0
            committed = {tp: await self.consumer.committed(tp) or 0 for tp in assigned}
            recent = await recent_notifications(self.settings, committed, self.notifications)
            self.partitions |= new
            log.info("partitions_restored", partitions=sorted(new), orders=loaded, co_partitioned=same,
                     notifications=recent)
        finally:  # a failed restore is logged by aiokafka; consuming on beats a consumer stuck for good
            self.restored.set()

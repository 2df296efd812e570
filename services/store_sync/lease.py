"""One active store-sync instance at a time, the others hot standbys: a lease held through a consumer group.

Store sync is not partitioned end to end (catalog refreshes walk every store, a mapping change re-checks SKUs of
every shop), so running it twice would double TikTok calls and pushes. Every instance joins the group
`shopsync-store-sync-lease` on `shopsync.stores` and reads nothing; the member assigned partition 0 is active.
The group coordinator does the rest: a standby takes over when the active instance leaves or stops heartbeating
(after `session.timeout.ms`). Members sort by client id (the round-robin assignor hands partition 0 to the first),
and the client id carries the start time, so the oldest instance keeps the lease when a newer one joins.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from shared.kafka import create_consumer
from shared.logging import get_logger
from shared.settings import Settings
from shared.topics import STORES, topic_name

log = get_logger("store_sync.lease")
LEASE_GROUP = "shopsync-store-sync-lease"
HANDOVER_S = 30.0  # how long a revoked holder may take to stop before the group moves on


class Lease(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no type information
    """`held` is set while this instance is the active one, `lost` once it must stop; the holder sets `released`
    when its work has stopped."""

    def __init__(self, settings: Settings, started_at: float | None = None) -> None:
        self.settings = settings
        self.held = asyncio.Event()
        self.lost = asyncio.Event()
        self.released = asyncio.Event()
        self.released.set()
        started_ms = int((time.time() if started_at is None else started_at) * 1000)
        self._topic = topic_name(STORES, settings.shopsync_topic_prefix)
        self.consumer: AIOKafkaConsumer = create_consumer(
            settings, topic_name(LEASE_GROUP, settings.shopsync_topic_prefix),
            client_id=f"shopsync-store-sync-lease-{started_ms:015d}")

    async def run(self, stop: asyncio.Event) -> None:
        """Stay in the group until `stop` (reading nothing), then leave it so a standby takes over at once."""
        self.consumer.subscribe([self._topic], listener=self)
        await self.consumer.start()
        try:
            while not stop.is_set():
                self.consumer.pause(*self.consumer.assignment())  # membership only: no records are wanted
                await self.consumer.getmany(timeout_ms=500)
        finally:
            self.held.clear()
            self.lost.set()
            with contextlib.suppress(KafkaError):
                await self.consumer.stop()

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if not self.held.is_set() or all(tp.partition != 0 for tp in revoked):
            return
        self.held.clear()
        self.lost.set()
        log.info("lease_revoked")
        with contextlib.suppress(TimeoutError):  # let the active work stop before another instance starts it
            await asyncio.wait_for(self.released.wait(), HANDOVER_S)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if any(tp.topic == self._topic and tp.partition == 0 for tp in assigned):
            self.lost.clear()
            self.released.clear()
            self.held.set()
            log.info("lease_acquired")

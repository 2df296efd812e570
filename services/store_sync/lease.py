"""One active store-sync instance at a time, the others hot standbys: a lease held through a consumer group.

Store sync is not partitioned end to end (catalog refreshes walk every store and it is `tiktok.catalog`'s one writer;
a mapping change re-checks SKUs of every shop), so two working instances would double TikTok calls and pushes and
write the catalog twice. Every instance joins the group `shopsync-store-sync-lease` on `shopsync.stores` and reads
nothing; the member assigned partition 0 is active. The group coordinator does the rest: a standby takes over when
the active instance leaves or stops heartbeating (after `session.timeout.ms`). The round-robin assignor hands
partition 0 to the first member by member id, which starts with the client id, and the client id carries the start
time (`lease_client_id`): the oldest instance keeps the lease when a newer one joins.

A rebalance that gives the holder partition 0 again (a standby joining, a broker restart) does not interrupt its
work. The holder learns that it lost the lease on the assignment that gives partition 0 to another member (only
when the group took it for dead: it stopped heartbeating past `session.timeout.ms`); it stops its work then, while
the new holder loads its state.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from shared.logging import get_logger
from shared.settings import Settings
from shared.topics import STORES, topic_name

log = get_logger("store_sync.lease")
LEASE_GROUP = "shopsync-store-sync-lease"
HANDOVER_S = 30.0  # how long a revoked holder may take to stop its work before the group moves on


def lease_client_id(started_at: float | None = None) -> str:
    """A client id that sorts by start time (older first)."""
    return f"shopsync-store-sync-lease-{int((time.time() if started_at is None else started_at) * 1000):015d}"


class Lease(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no type information
    """`held` is set while this instance is the active one, `lost` once it must stop, `standby` while another
    member holds it; the holder sets `released` once its work has stopped. `consumer` is a member of `LEASE_GROUP`
    (client id from `lease_client_id`) that this lease starts and stops."""

    def __init__(self, settings: Settings, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.held = asyncio.Event()
        self.lost = asyncio.Event()
        self.standby = asyncio.Event()
        self.released = asyncio.Event()
        self.released.set()
        self._topic = topic_name(STORES, settings.shopsync_topic_prefix)

    async def start(self) -> None:
        self.consumer.subscribe([self._topic], listener=self)
        await self.consumer.start()

    async def run(self, stop: asyncio.Event) -> None:
        """Stay in the group until `stop` (reading nothing), then leave it so a standby takes over at once."""
        try:
            while not stop.is_set():
                self.consumer.pause(*self.consumer.assignment())  # membership only: no records are wanted
                await self.consumer.getmany(timeout_ms=500)
        finally:
            self.held.clear()
            self.lost.set()

    async def stop(self) -> None:
        with contextlib.suppress(KafkaError):
            await self.consumer.stop()

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Nothing stops here: every rebalance revokes everything (a standby joining, a broker restarting), and the
        holder gets partition 0 back unless it left. Whether the lease moved is known on assignment."""

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if any(tp.topic == self._topic and tp.partition == 0 for tp in assigned):
            if not self.held.is_set():
                self.standby.clear()
                self.lost.clear()
                self.released.clear()
                self.held.set()
                log.info("lease_acquired")
            return
        self.standby.set()
        if self.held.is_set():  # the group gave partition 0 to another member: stop before it starts
            self.held.clear()
            self.lost.set()
            log.warning("lease_lost")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.released.wait(), HANDOVER_S)
        else:
            log.info("lease_standby")

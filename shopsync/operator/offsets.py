"""Consumer-group offset resets for full reprocessing, refused while the group has active members."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from shared.kafka import create_admin, create_consumer, partitions_of
from shared.settings import Settings


class GroupActive(RuntimeError):
    """The group has members: resetting now would race them."""


@dataclass(frozen=True, slots=True)
class Move:
    topic: str
    partition: int
    old: int | None
    new: int


async def plan_reset(settings: Settings, group: str, target: str, at_ms: int | None,
                     topics: list[str] | None) -> list[Move]:
    """Old and new offsets per partition; raises GroupActive naming the members."""
    admin = create_admin(settings)
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([group])
        members = [m for resp in described for g in resp.groups for m in g[5]] if described else []
        if members:
            who = ", ".join(f"{m[1]}@{m[2]}" for m in members)
            raise GroupActive(f"group {group} has {len(members)} active member(s): {who}; stop them first")
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    names = topics or sorted({tp.topic for tp in committed})
    if not names:
        raise ValueError(f"group {group} has no committed offsets; name the topic with --topic")
    consumer = create_consumer(settings, None)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in names for p in sorted(await partitions_of(consumer, t))]
        if not tps:
            raise ValueError(f"unknown topic(s): {', '.join(names)}")
        if target == "earliest":
            new = await consumer.beginning_offsets(tps)
        elif target == "latest":
            new = await consumer.end_offsets(tps)
        else:
            found = await consumer.offsets_for_times({tp: at_ms for tp in tps})
            ends = await consumer.end_offsets(tps)
            new = {tp: (found[tp].offset if found[tp] is not None else ends[tp]) for tp in tps}
    finally:
        await consumer.stop()
    return [Move(tp.topic, tp.partition, committed[tp].offset if tp in committed else None, new[tp]) for tp in tps]


async def apply_reset(settings: Settings, group: str, moves: list[Move]) -> None:
    consumer = create_consumer(settings, group)
    await consumer.start()
    try:
        offsets = {TopicPartition(m.topic, m.partition): OffsetAndMetadata(m.new, "") for m in moves}
        consumer.assign(list(offsets))  # manual assignment: no group join, so nothing races the reset
        await consumer.commit(offsets)
    finally:
        await consumer.stop()

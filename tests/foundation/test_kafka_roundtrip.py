"""Producer/consumer factories against the real broker: keys, headers, idempotence, group commit/resume."""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition

from shared.envelope import CloudEvent, from_record, to_headers
from shared.kafka import commit_owned, create_consumer, create_producer, read_to_end
from shared.settings import Settings
from shared.topics import DLQ, STORES, TIKTOK_WEBHOOKS, topic_name
from tests.fakes import RebalancedConsumer
from tests.waiting import eventually


async def consume(settings: Settings, group: str | None, topic: str, count: int) -> list:
    consumer = create_consumer(settings, group, topic)
    await consumer.start()
    records: list[Any] = []
    try:
        async def enough() -> bool:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
            return len(records) >= count

        await eventually(enough, within=30, every=0, what=f"{count} records on {topic}")
        if group:
            await consumer.commit()
    finally:
        await consumer.stop()
    return records


async def test_records_round_trip_with_keys_and_cloudevents_headers(settings: Settings) -> None:
    topic = topic_name(TIKTOK_WEBHOOKS, settings.shopsync_topic_prefix)
    producer = create_producer(settings)
    await producer.start()
    try:
        for i in range(5):
            event = CloudEvent(id=f"n-{i}", source="tiktok-shop/1", type="tiktok.shop.order_status_change",
                               data=b'{"i":%d}' % i, time="2026-11-25T10:00:00Z")
            await producer.send_and_wait(topic, event.data, key=f"1:{i}".encode(), headers=to_headers(event))
    finally:
        await producer.stop()
    records = await consume(settings, None, TIKTOK_WEBHOOKS, 5)
    by_key = {r.key: r for r in records}
    assert set(by_key) == {f"1:{i}".encode() for i in range(5)}
    event = from_record(by_key[b"1:3"].headers, by_key[b"1:3"].value)
    assert (event.id, event.source, event.data) == ("n-3", "tiktok-shop/1", b'{"i":3}')


async def test_producer_is_idempotent_with_acks_all(settings: Settings) -> None:
    producer = create_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(topic_name(DLQ, settings.shopsync_topic_prefix), b"x")
        assert producer._txn_manager is not None  # idempotence turns on the transaction manager
        assert producer._txn_manager.producer_id >= 0  # and the broker assigned a producer id
    finally:
        await producer.stop()


async def test_consumer_group_resumes_after_last_commit(settings: Settings) -> None:
    topic = topic_name(DLQ, settings.shopsync_topic_prefix)
    producer = create_producer(settings)
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topic, b"%d" % i, partition=0)
        first = await consume(settings, "g-resume", DLQ, 10)
        assert [r.value for r in first] == [b"%d" % i for i in range(10)]
        for i in range(10, 13):
            await producer.send_and_wait(topic, b"%d" % i, partition=0)
    finally:
        await producer.stop()
    second = await consume(settings, "g-resume", DLQ, 3)
    assert [r.value for r in second] == [b"10", b"11", b"12"]


async def test_uncommitted_records_are_redelivered(settings: Settings) -> None:
    topic = topic_name(DLQ, settings.shopsync_topic_prefix)
    producer = create_producer(settings)
    await producer.start()
    await producer.send_and_wait(topic, b"only", partition=0)
    await producer.stop()
    consumer = create_consumer(settings, "g-redeliver", DLQ)
    await consumer.start()
    try:
        async def fetched() -> list[Any]:
            return [r for batch in (await consumer.getmany(timeout_ms=200)).values() for r in batch]

        await eventually(fetched, within=30, every=0, what="the record")
    finally:
        await consumer.stop()  # no commit: at-least-once means the next member sees it again
    again = await consume(settings, "g-redeliver", DLQ, 1)
    assert [r.value for r in again] == [b"only"]


async def test_read_to_end_returns_compacted_table(settings: Settings) -> None:
    topic = topic_name(STORES, settings.shopsync_topic_prefix)
    producer = create_producer(settings)
    await producer.start()
    for i in range(20):
        await producer.send_and_wait(topic, b"v%d" % i, key=b"k%d" % (i % 4))
    await producer.stop()
    table = {}
    async for record in read_to_end(settings, STORES):
        table[record.key] = record.value
    assert table == {b"k0": b"v16", b"k1": b"v17", b"k2": b"v18", b"k3": b"v19"}


async def test_commit_owned_skips_partitions_that_moved_and_commits_the_rest(settings: Settings) -> None:
    await publish_one_record_per_partition(settings)
    group = topic_name("commit-owned", settings.shopsync_topic_prefix)
    consumer = create_consumer(settings, group, DLQ)
    await consumer.start()
    try:
        async def assigned() -> set[TopicPartition]:
            await consumer.getmany(timeout_ms=200)
            return consumer.assignment()

        await eventually(assigned, within=30, every=0, what="partitions assigned")
        owned = sorted(consumer.assignment())[0]
        elsewhere = TopicPartition(owned.topic, 99)  # not this member's (a rebalance took it)
        assert await commit_owned(consumer, {owned: 1, elsewhere: 5})
        assert await consumer.committed(owned) == 1
        assert not await commit_owned(consumer, {elsewhere: 5})
    finally:
        await consumer.stop()


async def test_commit_owned_treats_a_commit_overtaken_by_a_rebalance_as_skipped() -> None:
    consumer = RebalancedConsumer({TopicPartition("t", 0)})
    assert not await commit_owned(consumer, {TopicPartition("t", 0): 3})  # type: ignore[arg-type]  # the fake
    assert not await commit_owned(consumer)  # type: ignore[arg-type]  # the fake


async def publish_one_record_per_partition(settings: Settings) -> None:
    producer = create_producer(settings)
    await producer.start()
    try:
        for partition in range(settings.shopsync_topic_partitions):
            await producer.send_and_wait(topic_name(DLQ, settings.shopsync_topic_prefix), b"{}", partition=partition)
    finally:
        await producer.stop()

"""ManagedProducer against the real broker: a wedged idempotent producer (the sequence gap aiokafka leaves after
batches fail while a leader is away, aio-libs/aiokafka#1017) is replaced, and what it reported is the truth."""

from __future__ import annotations

import httpx
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber
from prometheus_client import CollectorRegistry

from services.webhook_gateway.wiring import build_app
from shared.kafka import create_managed_producer
from shared.producer import ManagedProducer, ProducerUnavailable
from shared.settings import Settings
from shared.topics import TIKTOK_WEBHOOKS, topic_name
from tests.topicview import TopicView
from tests.waiting import eventually
from tests.webhooks import sign, webhook_body


def wedge(producer: ManagedProducer, topic: str, partitions: range = range(3)) -> None:
    """Leave the sequence gap a batch expired after it was numbered leaves: the broker refuses what follows."""
    inner: AIOKafkaProducer = producer._producer  # type: ignore[assignment]  # the producer in use right now
    for partition in partitions:
        inner._txn_manager.increment_sequence_number(TopicPartition(topic, partition), 5)


async def test_a_wedged_producer_is_replaced_and_only_acknowledged_records_are_on_the_topic(
        settings: Settings) -> None:
    registry = CollectorRegistry()
    producer = create_managed_producer(settings, "test", registry)
    topic = topic_name(TIKTOK_WEBHOOKS, settings.shopsync_topic_prefix)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"before", key=b"k", partition=0)
        wedge(producer, topic)
        with pytest.raises(OutOfOrderSequenceNumber):
            await producer.send_and_wait(topic, b"refused", key=b"k", partition=0)
        assert producer.problem == "producer restarting after OutOfOrderSequenceNumber"
        with pytest.raises(ProducerUnavailable):  # while it is replaced, a send fails at once: nothing is sent
            await producer.send(topic, b"during", key=b"k", partition=0)
        await producer.deliver(topic, b"after", key=b"k")  # waits for the replacement
        assert producer.restarts == 1
        assert producer.problem is None
        assert registry.get_sample_value("kafka_producer_restarts_total",
                                         {"reason": "OutOfOrderSequenceNumber"}) == 1
        assert registry.get_sample_value("kafka_producer_ready") == 1
    finally:
        await producer.stop()
    async with TopicView(settings, TIKTOK_WEBHOOKS) as view:
        records = await view.until(lambda rs: any(r.value == b"after" for r in rs))
    assert sorted(r.value for r in records) == [b"after", b"before"]


async def test_a_producer_failing_every_send_for_a_while_is_replaced(settings: Settings) -> None:
    registry = CollectorRegistry()
    producer = create_managed_producer(settings.model_copy(update={"shopsync_producer_stuck_after_s": 0.3}),
                                       "test", registry, request_timeout_ms=300)
    await producer.start()
    try:
        with pytest.raises(KafkaError):  # a topic that does not exist: metadata never comes, the send times out
            await producer.send_and_wait(f"{settings.shopsync_topic_prefix}no-such-topic", b"x")
        assert producer.problem is not None and producer.problem.startswith("no record acknowledged")
        await eventually(lambda: producer.restarts, within=10, what="the producer replaced")  # nothing acked since
        assert producer.problem is None
        await producer.deliver(topic_name(TIKTOK_WEBHOOKS, settings.shopsync_topic_prefix), b"y")
        assert registry.get_sample_value("kafka_producer_restarts_total", {"reason": "stuck"}) == 1
    finally:
        await producer.stop()
    assert producer.problem == "producer closed"


async def test_gateway_answers_503_while_its_producer_is_wedged_then_200_without_a_restart(
        settings: Settings) -> None:
    app = build_app(settings)
    topic = topic_name(TIKTOK_WEBHOOKS, settings.shopsync_topic_prefix)
    producer: ManagedProducer = app.state.publisher._producer

    async def post(n: int) -> int:
        body = webhook_body(order_id=str(10**17 + n), notification_id=f"w-{n}")
        return (await client.post("/webhooks/tiktok", content=body, headers=sign(body))).status_code

    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        assert await post(0) == 200
        wedge(producer, topic)
        answers = [await post(n) for n in range(1, 4)]
        assert answers[0] == 503  # refused by the broker: never a false 200

        async def accepted_again() -> bool:
            return await post(99) == 200

        await eventually(accepted_again, within=15, every=0.1, what="a 200 from the replaced producer")
        assert (await client.get("/readyz")).status_code == 200
        metrics = (await client.get("/metrics")).text
    assert 'kafka_producer_restarts_total{reason="OutOfOrderSequenceNumber"} 1.0' in metrics

"""Consumer lag per group, computed when Prometheus scrapes: `kafka_consumer_lag{group, topic}`.

The lag of a partition is the broker's high watermark (as of the consumer's last fetch) minus the offset this member
last committed for it: the records the group would still have to process if it stopped now. A partition counts
from this member's first commit on it (until then its lag is the previous owner's, unknown here).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class LagSource(Protocol):
    """What `shared.kafka.Consumer` offers the collector."""

    group_id: str | None
    committed_offsets: dict[TopicPartition, int]

    def assignment(self) -> set[TopicPartition]: ...

    def highwater(self, partition: TopicPartition) -> int | None: ...


class ConsumerLag(Collector):
    """One per registry; `watch` each consumer of the service (a consumer without a group is not watched)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._consumers: list[LagSource] = []
        registry.register(self)

    def watch(self, consumer: LagSource) -> None:
        if consumer.group_id:
            self._consumers.append(consumer)

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("kafka_consumer_lag", "Records behind the end of the topic, per consumer group "
                                "(high watermark minus committed offset, over this member's partitions)",
                                labels=["group", "topic"])

    def collect(self) -> Iterator[Metric]:
        family = next(iter(self.describe()))
        assert isinstance(family, GaugeMetricFamily)
        totals: dict[tuple[str, str], int] = {}
        for consumer in self._consumers:
            for tp in consumer.assignment():
                high, done = consumer.highwater(tp), consumer.committed_offsets.get(tp)
                if high is None or done is None:
                    continue
                key = (consumer.group_id or "", tp.topic)
                totals[key] = totals.get(key, 0) + max(0, high - done)
        for (group, topic), lag in sorted(totals.items()):
            family.add_metric([group, topic], lag)
        yield family

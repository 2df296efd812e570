"""Dead letters: the original record on `shopsync.dlq`, with why and where it came from in headers."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.structs import ConsumerRecord

from shared.envelope import header_map, rfc3339
from shared.producer import ManagedProducer, Sender, deliver
from shared.settings import Settings
from shared.topics import DLQ, topic_name

REASON = "shopsync_dlq_reason"
SOURCE_TOPIC = "shopsync_dlq_topic"
PARTITION = "shopsync_dlq_partition"
OFFSET = "shopsync_dlq_offset"
AT = "shopsync_dlq_at"
DLQ_HEADERS = frozenset({REASON, SOURCE_TOPIC, PARTITION, OFFSET, AT})


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str
    source_topic: str
    partition: int
    offset: int
    at: str
    key: bytes | None
    value: bytes | None
    original_headers: list[tuple[str, bytes]]


def dlq_headers(record: ConsumerRecord, reason: str, now: float) -> list[tuple[str, bytes]]:
    """The original headers (kept, so a redrive republishes the record as it was) plus the DLQ ones."""
    original = [(k, v) for k, v in (record.headers or ()) if k not in DLQ_HEADERS]
    return [*original, (REASON, reason.encode()), (SOURCE_TOPIC, record.topic.encode()),
            (PARTITION, str(record.partition).encode()), (OFFSET, str(record.offset).encode()),
            (AT, rfc3339(now).encode())]


async def send_to_dlq(producer: Sender, settings: Settings, record: ConsumerRecord, reason: str,
                      now: float) -> None:
    """Publish `record` unchanged to the DLQ with the reason, resent until acknowledged (a managed producer, which
    counts it in `dlq_records_total`)."""
    await deliver(producer, topic_name(DLQ, settings.shopsync_topic_prefix), record.value, record.key,
                  dlq_headers(record, reason, now))
    if isinstance(producer, ManagedProducer):
        producer.count_dead_letter(record.topic)


def read_dead_letter(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]] | None) -> DeadLetter:
    h = header_map(headers)
    return DeadLetter(reason=h.get(REASON, ""), source_topic=h.get(SOURCE_TOPIC, ""),
                      partition=int(h.get(PARTITION, "-1") or -1), offset=int(h.get(OFFSET, "-1") or -1),
                      at=h.get(AT, ""), key=key, value=value,
                      original_headers=[(k, v) for k, v in (headers or ()) if k not in DLQ_HEADERS])

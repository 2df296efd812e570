"""TikTok notifications already acted on, so a redelivered webhook is acted on once.

TikTok retries a push it got no 200 for (2 min, 30 min, 3 h, 12 h), and a push that timed out on its side may
already be on Kafka: the same `tts_notification_id` then arrives again. A consumer remembers the ids it finished
for `TIKTOK_RETRY_HORIZON_S` (by the push's own `timestamp`), at most `max_size` of them (oldest forgotten first),
and reloads the window from the topic when it is assigned partitions (see `recent_notifications`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import orjson
from aiokafka.structs import TopicPartition

from shared.kafka import create_consumer
from shared.settings import Settings

TIKTOK_RETRY_HORIZON_S = 72 * 3600  # TikTok's last retry comes ~15 h after the push; 72 h leaves room
WARM_RECORDS = 20_000  # records per partition read back on assignment


class NotificationWindow:
    """Notification ids finished recently; bounded by age (push timestamp) and by count."""

    def __init__(self, max_size: int = 500_000, horizon_s: int = TIKTOK_RETRY_HORIZON_S) -> None:
        self.max_size, self.horizon_s = max_size, horizon_s
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._newest = 0

    def __contains__(self, notification_id: object) -> bool:
        return notification_id in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, notification_id: str, pushed_at: int) -> None:
        """Remember a finished notification, then forget what fell out of the window."""
        self._seen[notification_id] = pushed_at
        self._seen.move_to_end(notification_id)
        self._newest = max(self._newest, pushed_at)
        while len(self._seen) > self.max_size:
            self._seen.popitem(last=False)
        while self._seen:
            oldest_id, oldest_at = next(iter(self._seen.items()))
            if oldest_at >= self._newest - self.horizon_s:
                break
            del self._seen[oldest_id]


def notification_of(value: bytes | None) -> tuple[str, int] | None:
    """(`tts_notification_id`, `timestamp`) of a webhook body, or None when it has no id."""
    try:
        doc: Any = orjson.loads(value or b"")
        notification_id, pushed_at = doc.get("tts_notification_id"), doc.get("timestamp")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if isinstance(notification_id, str) and notification_id and isinstance(pushed_at, int):
        return notification_id, pushed_at
    return None


async def recent_notifications(settings: Settings, committed: dict[TopicPartition, int], window: NotificationWindow,
                               per_partition: int = WARM_RECORDS) -> int:
    """Add to `window` the notifications of the last `per_partition` records before each committed offset (records
    a consumer of the group finished); the number added."""
    wanted = {tp: offset for tp, offset in committed.items() if offset > 0}
    if not wanted:
        return 0
    consumer = create_consumer(settings, None, enable_auto_commit=False)
    await consumer.start()
    added = 0
    try:
        consumer.assign(list(wanted))
        for tp, offset in wanted.items():
            consumer.seek(tp, max(0, offset - per_partition))
        remaining, idle = set(wanted), 0
        while remaining and idle < 4:
            batch = await consumer.getmany(*remaining, timeout_ms=500)
            idle = 0 if batch else idle + 1  # 2 s without records: the rest was deleted; what was read is enough
            for tp, records in batch.items():
                for record in _before(records, wanted[tp]):
                    if (found := notification_of(record.value)) is not None:
                        window.add(*found)
                        added += 1
                if records and records[-1].offset >= wanted[tp] - 1:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return added


def _before(records: Iterable[Any], end: int) -> Iterable[Any]:
    return (r for r in records if r.offset < end)

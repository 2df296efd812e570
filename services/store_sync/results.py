"""Outcomes on `sync.results`: one record per shipment and per (store, SKU) inventory push, keyed as its input."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter

from shared.envelope import CloudEvent, rfc3339, to_headers
from shared.settings import Settings
from shared.topics import SYNC_RESULTS, topic_name

Kind = Literal["shipment", "inventory"]
Status = Literal["applied", "failed", "skipped"]
CE_SOURCE = "shopsync/store_sync"


@dataclass(slots=True)
class SyncResult:
    """What happened to one push; `reason` is machine-readable (`shipment:unknown_carrier`), `detail` says the fix."""

    kind: Kind
    key: str
    status: Status
    reason: str | None = None
    detail: str | None = None
    tiktok_code: int | None = None
    attempts: int = 0
    ids: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, now: float) -> dict[str, Any]:
        return {"kind": self.kind, "status": self.status, "reason": self.reason, "detail": self.detail,
                "tiktok_code": self.tiktok_code, "attempts": self.attempts, **self.ids, "synced_at": rfc3339(now)}


class ResultWriter:
    """Publishes results (acked) with CloudEvents headers `shopsync.sync.<kind>.<status>`; counts each acknowledged
    one in `counted` (`store_sync_results_total{kind, status, reason}`) when given."""

    def __init__(self, producer: AIOKafkaProducer, settings: Settings, counted: Counter | None = None) -> None:
        self._producer = producer
        self._counted = counted
        self._topic = topic_name(SYNC_RESULTS, settings.shopsync_topic_prefix)

    async def publish(self, results: list[SyncResult]) -> None:
        now = time.time()
        futures = []
        for result in results:
            value = orjson.dumps(result.to_dict(now))
            event = CloudEvent(id=f"{result.kind}:{result.key}:{time.time_ns()}", source=CE_SOURCE,
                               type=f"shopsync.sync.{result.kind}.{result.status}", data=value, time=rfc3339(now),
                               subject=result.key)
            futures.append(await self._producer.send(self._topic, value, key=result.key.encode(),
                                                     headers=to_headers(event)))
        for future in futures:
            await future
        if self._counted is not None:
            for result in results:
                self._counted.labels(kind=result.kind, status=result.status, reason=result.reason or "").inc()

"""Ingest outputs: versioned upserts on `orders.ingested`, reasons on `orders.skipped`.

Never publishes an older `order_version` over a newer one for a key, and never drops a change as a duplicate
because TikTok kept `update_time` (an address or package change need not move it): at the same version the
content the OMS receives is compared. The last published version and content digest per key are restored from
the compacted `orders.ingested` at start and kept up to date.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import orjson
from opentelemetry.trace import SpanKind

from services.order_ingest.decide import OrderFacts
from shared.envelope import CloudEvent, header_map, rfc3339, to_headers
from shared.kafka import read_to_end
from shared.orders import (
    ACTIVE,
    CE_SOURCE_INGEST,
    CE_TYPE_INGESTED,
    CE_TYPE_SKIPPED,
    CE_TYPE_WITHDRAWN,
    IngestedOrder,
    order_key,
)
from shared.producer import Outbox, Sender
from shared.settings import Settings
from shared.telemetry import child_span
from shared.topics import ORDERS_INGESTED, ORDERS_SKIPPED, topic_name
from shared.tracing import child_traceparent


class Published(NamedTuple):
    """What was last published for an order key."""

    version: int
    lifecycle: str
    digest: bytes


def content_digest(doc: dict[str, Any]) -> bytes:
    """A digest of everything the OMS receives, except when we ingested it."""
    content = {k: v for k, v in doc.items() if k != "ingested_at"}
    return hashlib.blake2b(orjson.dumps(content, option=orjson.OPT_SORT_KEYS), digest_size=8).digest()


class OrderOutputs:
    """Publishes decisions; `flush` waits until everything sent so far is acknowledged."""

    def __init__(self, producer: Sender, settings: Settings) -> None:
        self._outbox = Outbox(producer)
        self._ingested = topic_name(ORDERS_INGESTED, settings.shopsync_topic_prefix)
        self._skipped = topic_name(ORDERS_SKIPPED, settings.shopsync_topic_prefix)
        self.versions: dict[str, Published] = {}  # key -> what was last published
        self._decided: dict[str, int] = {}  # key -> newest update_time a decision covered (skips included)

    async def restore(self, settings: Settings, partitions: set[int] | None = None) -> int:
        """Load what is published for the orders of `partitions` (all when None); the number of orders loaded.

        Replaces what this instance remembered for them: another instance may have decided them meanwhile."""
        loaded = 0
        async for record in read_to_end(settings, ORDERS_INGESTED, partitions):
            if record.key is None or record.value is None:
                continue
            loaded += 1
            try:
                doc = orjson.loads(record.value)
                self.versions[record.key.decode()] = Published(int(doc["order_version"]), str(doc["lifecycle"]),
                                                               content_digest(doc))
            except (ValueError, KeyError, TypeError):
                continue
        return loaded

    def forget(self, owned_elsewhere: Callable[[str], bool]) -> None:
        """Drop what is remembered for order keys another instance owns now (partitions revoked)."""
        for table in (self.versions, self._decided):
            for key in [k for k in table if owned_elsewhere(k)]:
                del table[key]

    def accepted_before(self, key: str) -> bool:
        entry = self.versions.get(key)
        return entry is not None and entry.lifecycle == ACTIVE

    def is_stale(self, key: str, version: int) -> bool:
        """True when a version at least this new was already published for `key`."""
        entry = self.versions.get(key)
        return entry is not None and entry.version >= version

    def decided_through(self, key: str) -> int | None:
        """The newest TikTok `update_time` already decided for `key` (published or skipped); None if unknown."""
        published = self.versions.get(key)
        decided = self._decided.get(key)
        if published is None:
            return decided
        return published.version if decided is None else max(decided, published.version)

    def note_decided(self, key: str, update_time: int | None) -> None:
        """Record that a decision covered the order's changes up to `update_time`."""
        if update_time is not None and update_time > self._decided.get(key, -1):
            self._decided[key] = update_time

    async def publish_order(self, order: IngestedOrder, traceparent: str | None) -> bool:
        """Publish an accepted or withdrawn order unless a newer version, or the same content at this version, is
        out; True if sent."""
        doc = order.to_dict()
        digest = content_digest(doc)
        last = self.versions.get(order.key)
        if last is not None and (last.version > order.order_version or (
                last.version == order.order_version and last.lifecycle == order.lifecycle and last.digest == digest)):
            return False
        value = orjson.dumps(doc)
        ce_type = CE_TYPE_INGESTED if order.lifecycle == ACTIVE else CE_TYPE_WITHDRAWN
        event = CloudEvent(id=f"{order.key}:{order.order_version}:{order.lifecycle}:{digest.hex()}",
                           source=CE_SOURCE_INGEST, type=ce_type, data=value, time=order.ingested_at, subject=order.key)
        await self._send(self._ingested, order.key, value, event, traceparent)
        self.versions[order.key] = Published(order.order_version, order.lifecycle, digest)
        return True

    async def publish_skip(self, shop_id: str, order_id: str, reasons: list[str], *, facts: OrderFacts | None,
                           version: int | None, nickname: str, notification_id: str | None,
                           traceparent: str | None, fetched: bool) -> None:
        key = order_key(shop_id, order_id)
        now = time.time()
        doc = {"shop_id": shop_id, "order_id": order_id, "reasons": reasons, "order_version": version,
               "status": facts.status if facts else None, "shipping_type": facts.shipping_type if facts else None,
               "fulfillment_type": facts.fulfillment_type if facts else None,
               "warehouse_id": facts.warehouse_id if facts else None, "store_nickname": nickname,
               "notification_id": notification_id, "decided_from": "order_detail" if fetched else "webhook",
               "skipped_at": rfc3339(now)}
        value = orjson.dumps(doc)
        event = CloudEvent(id=f"{key}:{version}:{notification_id or now}:skipped", source=CE_SOURCE_INGEST,
                           type=CE_TYPE_SKIPPED, data=value, time=rfc3339(now), subject=key)
        await self._send(self._skipped, key, value, event, traceparent)

    async def _send(self, topic: str, key: str, value: bytes, event: CloudEvent, traceparent: str | None) -> None:
        """Send under a `publish` span continuing `traceparent` (tracing off: a hand-made child traceparent)."""
        with child_span("publish", traceparent, SpanKind.PRODUCER, {"messaging.destination.name": topic}) as own:
            headers = to_headers(event, [("traceparent", own or child_traceparent(traceparent))])
            await self._outbox.send(topic, value, key.encode(), headers)

    async def flush(self) -> None:
        """Wait until every record sent so far is acknowledged, resending what failed (a broker outage, a
        replaced producer); safe to call from several tasks at once."""
        await self._outbox.flush()


def traceparent_of(headers: Any) -> str | None:
    return header_map(headers).get("traceparent")

"""Ingest outputs: versioned upserts on `orders.ingested`, reasons on `orders.skipped`.

Never publishes an older `order_version` over a newer one for a key: the last published version per key is
restored from the compacted `orders.ingested` at start and kept up to date.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from services.order_ingest.decide import OrderFacts
from shared.envelope import CloudEvent, header_map, rfc3339, to_headers
from shared.kafka import read_to_end
from shared.producer import Outbox, Sender
from shared.orders import (ACTIVE, CE_SOURCE_INGEST, CE_TYPE_INGESTED, CE_TYPE_SKIPPED, CE_TYPE_WITHDRAWN,
                           IngestedOrder, order_key)
from shared.settings import Settings
from shared.topics import ORDERS_INGESTED, ORDERS_SKIPPED, topic_name
from shared.tracing import child_traceparent


class OrderOutputs:
    """Publishes decisions; `flush` waits until everything sent so far is acknowledged."""

    def __init__(self, producer: Sender, settings: Settings) -> None:
        self._outbox = Outbox(producer)
        self._ingested = topic_name(ORDERS_INGESTED, settings.shopsync_topic_prefix)
        self._skipped = topic_name(ORDERS_SKIPPED, settings.shopsync_topic_prefix)
        self.versions: dict[str, tuple[int, str]] = {}  # key -> (order_version, lifecycle) last published

    async def restore(self, settings: Settings) -> None:
        async for record in read_to_end(settings, ORDERS_INGESTED):
            if record.key is None or record.value is None:
                continue
            try:
                doc = orjson.loads(record.value)
                self.versions[record.key.decode()] = (int(doc["order_version"]), str(doc["lifecycle"]))
            except (ValueError, KeyError, TypeError):
                continue

    def accepted_before(self, key: str) -> bool:
        entry = self.versions.get(key)
        return entry is not None and entry[1] == ACTIVE

    def is_stale(self, key: str, version: int) -> bool:
        """True when a version at least this new was already published for `key`."""
        entry = self.versions.get(key)
        return entry is not None and entry[0] >= version

    async def publish_order(self, order: IngestedOrder, traceparent: str | None) -> bool:
        """Publish an accepted or withdrawn order unless a newer (or the same) version is out; True if sent."""
        if self.is_stale(order.key, order.order_version) and self.versions[order.key][1] == order.lifecycle:
            return False
        if self.versions.get(order.key, (-1, ""))[0] > order.order_version:
            return False
        value = orjson.dumps(order.to_dict())
        ce_type = CE_TYPE_INGESTED if order.lifecycle == ACTIVE else CE_TYPE_WITHDRAWN
        event = CloudEvent(id=f"{order.key}:{order.order_version}:{order.lifecycle}", source=CE_SOURCE_INGEST,
                           type=ce_type, data=value, time=order.ingested_at, subject=order.key)
        await self._send(self._ingested, order.key, value, to_headers(event, self._trace(traceparent)))
        self.versions[order.key] = (order.order_version, order.lifecycle)
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
        await self._send(self._skipped, key, value, to_headers(event, self._trace(traceparent)))

    async def _send(self, topic: str, key: str, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        await self._outbox.send(topic, value, key.encode(), headers)

    async def flush(self) -> None:
        """Wait until every record sent so far is acknowledged, resending what failed (a broker outage, a
        replaced producer); safe to call from several tasks at once."""
        await self._outbox.flush()

    @staticmethod
    def _trace(traceparent: str | None) -> list[tuple[str, str]]:
        return [("traceparent", child_traceparent(traceparent))]


def traceparent_of(headers: Any) -> str | None:
    return header_map(headers).get("traceparent")

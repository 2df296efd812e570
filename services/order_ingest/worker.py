"""The ingest worker: consume `tiktok.webhooks`, fetch order details, decide, publish, then commit.

Events arriving close together are coalesced (one fetch per order, ≤50 ids per call, shops in parallel).
Offsets are committed only after every output of the batch is acknowledged (at-least-once; outputs are
versioned upserts, so a replayed batch changes nothing).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from services.order_ingest.decide import skip_without_fetch, store_reasons
from services.order_ingest.metrics import IngestMetrics
from services.order_ingest.outputs import OrderOutputs, traceparent_of
from services.order_ingest.pipeline import apply_order
from shared.dlq import send_to_dlq
from shared.logging import get_logger
from shared.tracing import trace_id
from structlog.contextvars import bound_contextvars
from shared.orders import order_key
from shared.settings import Settings
from shared.stores.model import DEAUTHORIZED, EXPIRING
from shared.stores.table import StoreTable, StoreWriter
from shared.stores.tokens import StoreUnavailable, TokenKeeper
from shared.tiktok import event_types
from shared.tiktok.client import TikTokClient
from shared.tiktok.errors import NotFound, PermissionDenied, RateLimited, TikTokError, TokenExpired, Transient

log = get_logger("order_ingest")
RETRY_CAP_S = 30.0


@dataclass(slots=True)
class OrderEvent:
    """An order-naming webhook, reduced to what the decision needs."""

    shop_id: str
    order_id: str
    status: str | None
    notification_id: str | None
    traceparent: str | None
    record: ConsumerRecord


class IngestWorker:
    def __init__(self, settings: Settings, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer,
                 outputs: OrderOutputs, table: StoreTable, writer: StoreWriter, tokens: TokenKeeper,
                 client: TikTokClient, metrics: IngestMetrics, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.consumer = consumer
        self.producer = producer
        self.outputs = outputs
        self.table = table
        self.writer = writer
        self.tokens = tokens
        self.client = client
        self.metrics = metrics
        self.clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        window = max(1, self.settings.shopsync_coalesce_ms)
        while not stop.is_set():
            batches = await self.consumer.getmany(timeout_ms=window, max_records=500)
            records = [r for rs in batches.values() for r in rs]
            if not records:
                continue
            await self.process(records, stop)
            await self.outputs.flush()
            await self.consumer.commit()

    async def process(self, records: list[ConsumerRecord], stop: asyncio.Event | None = None) -> None:
        """Decide on a batch of webhook records (outputs queued; call `outputs.flush()` before committing)."""
        latest: dict[str, OrderEvent] = {}
        for record in records:
            event = await self._read(record)
            if event is not None:
                latest[order_key(event.shop_id, event.order_id)] = event  # newest event per order wins
        to_fetch: dict[str, list[OrderEvent]] = {}
        for key, event in latest.items():
            store = self.table.stores.get(event.shop_id)
            accepted_before = self.outputs.accepted_before(key)
            early = skip_without_fetch(event.status, accepted_before)
            blocked = store_reasons(store)
            if early or (blocked and not accepted_before) or (store is not None and store.status == DEAUTHORIZED):
                reasons = ([early] if early else []) + blocked
                await self.outputs.publish_skip(event.shop_id, event.order_id, reasons or ["store:not_linked"],
                                                facts=None, version=None, nickname=store.nickname if store else "",
                                                notification_id=event.notification_id,
                                                traceparent=event.traceparent, fetched=False)
                self.metrics.count_skip(reasons or ["store:not_linked"])
                continue
            to_fetch.setdefault(event.shop_id, []).append(event)
        await asyncio.gather(*(self._fetch_and_apply(shop_id, events, stop) for shop_id, events in to_fetch.items()))

    async def _read(self, record: ConsumerRecord) -> OrderEvent | None:
        try:
            doc = orjson.loads(record.value or b"")
            event_type = int(doc["type"])
            shop_id = str(doc["shop_id"])
            data = doc.get("data") or {}
            if not isinstance(data, dict):
                raise TypeError("data is not an object")
        except (ValueError, KeyError, TypeError) as exc:
            await self._dead_letter(record, f"undecodable_webhook: {exc.__class__.__name__}")
            return None
        self.metrics.events.labels(type=str(event_type)).inc()
        if event_type == event_types.SELLER_DEAUTHORIZATION:
            await self._mark_store(shop_id, DEAUTHORIZED, None)
            return None
        if event_type == event_types.UPCOMING_AUTHORIZATION_EXPIRATION:
            await self._mark_store(shop_id, EXPIRING, data.get("expiration_time"))
            return None
        if event_type not in event_types.ORDER_EVENTS or not data.get("order_id"):
            return None
        status = data.get("order_status") if event_type == event_types.ORDER_STATUS_CHANGE else None
        return OrderEvent(shop_id, str(data["order_id"]), status, doc.get("tts_notification_id"),
                          traceparent_of(record.headers), record)

    async def _mark_store(self, shop_id: str, status: str, expiration: object) -> None:
        store = self.table.stores.get(shop_id)
        if store is None:
            log.warning("store_event_for_unknown_shop", shop_id=shop_id, status=status)
            return
        if status == EXPIRING:
            try:
                store.authorization_expires_at = int(str(expiration))
            except ValueError:
                pass
            if store.status == DEAUTHORIZED:
                return
            log.warning("store_authorization_expiring", shop_id=shop_id, nickname=store.nickname,
                        expires_at=store.authorization_expires_at)
        else:
            log.warning("store_deauthorized", shop_id=shop_id, nickname=store.nickname)
        store.status = status  # type: ignore[assignment]
        await self.writer.put(store)

    async def _fetch_and_apply(self, shop_id: str, events: list[OrderEvent], stop: asyncio.Event | None) -> None:
        by_id = {e.order_id: e for e in events}
        orders = await self._fetch(shop_id, list(by_id), stop)
        if orders is None:
            return
        store = self.table.stores.get(shop_id)
        for raw in orders:
            event = by_id.pop(str(raw.get("id")), None)
            if event is None:
                continue
            with bound_contextvars(trace_id=trace_id(event.traceparent), shop_id=shop_id, order_id=event.order_id,
                                   notification_id=event.notification_id):
                try:
                    outcome, reasons = await apply_order(raw, shop_id, store, self.outputs,
                                                         notification_id=event.notification_id,
                                                         traceparent=event.traceparent)
                except (ValueError, KeyError, TypeError) as exc:
                    await self._dead_letter(event.record, f"malformed_order: {exc.__class__.__name__}: {exc}")
                    continue
                log.info("order_decided", outcome=outcome, reasons=list(reasons))
            self.metrics.count(outcome, reasons)
        for event in by_id.values():  # asked for, not returned
            await self._dead_letter(event.record, "order_not_found")

    async def _fetch(self, shop_id: str, ids: list[str], stop: asyncio.Event | None) -> list[dict[str, Any]] | None:
        """Order details; transient failures are retried (capped backoff) until they pass or the worker stops."""
        delay = 1.0
        while True:
            try:
                auth = await self.tokens.shop_auth(shop_id)
                self.metrics.api_calls.labels(call="get_order_detail").inc()
                return await self.client.get_order_detail(auth, ids)
            except NotFound:
                if len(ids) == 1:
                    return []
                results = [await self._fetch(shop_id, [one], stop) for one in ids]  # find the missing one(s)
                return [o for r in results if r for o in r]
            except (PermissionDenied, StoreUnavailable) as exc:
                code = getattr(exc, "code", None)
                self.metrics.api_errors.labels(code=str(code)).inc()
                log.error("order_fetch_failed", shop_id=shop_id, error=exc.__class__.__name__, code=code)
                return []
            except (RateLimited, Transient, TokenExpired) as exc:
                self.metrics.api_errors.labels(code=str(exc.code)).inc()
                log.warning("order_fetch_retry", shop_id=shop_id, code=exc.code, delay_s=delay)
            except TikTokError as exc:
                self.metrics.api_errors.labels(code=str(exc.code)).inc()
                log.error("order_fetch_failed", shop_id=shop_id, code=exc.code, request_id=exc.request_id)
                return []
            if stop is not None and stop.is_set():
                return None
            await asyncio.sleep(delay)
            delay = min(RETRY_CAP_S, delay * 2)

    async def _dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        self.metrics.dlq.labels(reason=reason.split(":")[0]).inc()
        log.error("record_dead_lettered", reason=reason, topic=record.topic, partition=record.partition,
                  offset=record.offset)
        await send_to_dlq(self.producer, self.settings, record, reason, self.clock())

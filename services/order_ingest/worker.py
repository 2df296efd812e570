"""The ingest worker: consume `tiktok.webhooks`, fetch order details per shop, decide, publish, then commit.

Every shop has its own lanes (`SHOPSYNC_INGEST_LANES` per shop, an order always in the same one, chosen by a hash
of its id, so its events stay in order): their order events are coalesced (one fetch per order, however many
events name it; the client asks for 50 ids a call) and fetched independently, so a shop stuck in a 429 storm holds
up no other shop, and one shop's orders are not bound to one fetch-publish-acknowledge cycle at a time. The
client's rate limiter is per shop, so it bounds the calls of all a shop's lanes together. Offsets are committed
only up to the oldest record not yet finished, and a record is finished only once its outputs are acknowledged
(at-least-once; outputs are versioned upserts, so a redelivered record changes nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import zlib
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from opentelemetry.trace import SpanKind
from structlog.contextvars import bound_contextvars

from services.order_ingest.decide import skip_without_fetch, store_reasons
from services.order_ingest.fetch import OrderFetcher
from services.order_ingest.ledger import OffsetLedger
from services.order_ingest.metrics import IngestMetrics
from services.order_ingest.ordering import ORDER_CHECK, ORDER_CHECK_LABEL, OrderEvent, order_events, sort_out
from services.order_ingest.outputs import OrderOutputs, traceparent_of
from services.order_ingest.pipeline import apply_order
from shared.dedupe import NotificationWindow
from shared.dlq import send_to_dlq
from shared.kafka import commit_owned
from shared.logging import get_logger
from shared.order_checks import is_check, parse_check
from shared.orders import order_key
from shared.producer import Sender
from shared.settings import Settings
from shared.stores.model import DEAUTHORIZED, StoreRecord
from shared.stores.table import StoreTable
from shared.telemetry import child_span
from shared.tiktok import event_types
from shared.tiktok.errors import MalformedPayload
from shared.tiktok.orders import TikTokOrder
from shared.tiktok.webhooks import parse_webhook
from shared.tracing import trace_id

log = get_logger("order_ingest")
READS = event_types.ORDER_EVENTS | event_types.AUTHORIZATION_EVENTS  # the topics whose `data` the ingest judges
LANE_BATCH = 100  # orders one lane fetches at a time (two Get Order Detail calls)
MAX_IN_FLIGHT = 5000  # unfinished records before consumption pauses
Lane = tuple[str, int]  # shop id, lane number


def lane_of(shop_id: str, order_id: str, lanes: int) -> Lane:
    """The lane an order's events go through: the same one for every event of the order (a stable hash)."""
    return shop_id, zlib.crc32(order_id.encode()) % lanes


class IngestWorker:
    def __init__(self, settings: Settings, consumer: AIOKafkaConsumer, producer: Sender,
                 outputs: OrderOutputs, table: StoreTable, fetcher: OrderFetcher,
                 metrics: IngestMetrics, clock: Callable[[], float] = time.time,
                 restored: asyncio.Event | None = None, notifications: NotificationWindow | None = None) -> None:
        self.settings = settings
        self.consumer = consumer
        self.producer = producer
        self.outputs = outputs
        self.table = table
        self.fetcher = fetcher
        self.metrics = metrics
        self.clock = clock
        self.restored = restored  # set while the owned partitions' state is loaded (see `ownership`)
        self.notifications = notifications if notifications is not None else NotificationWindow()
        self._unfinished_ids: dict[tuple[str, int, int], tuple[str, int]] = {}  # record → its notification
        self.ledger = OffsetLedger()
        self.lanes_per_shop = max(1, settings.shopsync_ingest_lanes)
        self._waiting: dict[Lane, dict[str, list[OrderEvent]]] = {}  # lane → order id → events, oldest first
        self._fetching: set[str] = set()  # order keys a lane is working on
        self._lanes: dict[Lane, asyncio.Task[None]] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._open_orders: dict[tuple[str, int, int], int] = {}  # record → its order events not yet decided
        self._failure: BaseException | None = None
        self._stop = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop`; a failed lane (an output not acknowledged) ends the run with its error."""
        self._stop = stop
        window = max(1, self.settings.shopsync_coalesce_ms)
        try:
            while not stop.is_set():
                if self._failure is not None:
                    raise self._failure
                self._apply_backpressure()
                batches = await self.consumer.getmany(timeout_ms=window, max_records=500)
                if batches and self.restored is not None:
                    await self.restored.wait()  # records of new partitions wait for their state
                    owned = self.consumer.assignment()
                    batches = {tp: rs for tp, rs in batches.items() if tp in owned}  # the rest: the new owner's
                records = [r for rs in batches.values() for r in rs]
                if records:
                    await self.process(records)
                await self.commit()
        finally:
            lanes = list(self._lanes.values())
            for lane in lanes:
                lane.cancel()  # unfinished records are not committed: they are redelivered
            await asyncio.gather(*lanes, return_exceptions=True)
            with contextlib.suppress(KafkaError):
                await self.commit()

    async def process(self, records: list[ConsumerRecord]) -> None:
        """Drop stale events; decide what the provably newest webhook can decide alone; hand the rest to the
        shops' lanes (see `ordering`)."""
        for record in records:
            self.ledger.begin(TopicPartition(record.topic, record.partition), record.offset)
        finished: list[ConsumerRecord] = []
        by_key: dict[str, list[OrderEvent]] = {}
        for record in records:
            events = await self._read(record)
            finished.extend(() if events else (record,))
            for event in events:
                by_key.setdefault(event.key, []).append(event)
        pending: list[OrderEvent] = []  # events of records that also name an order still undecided
        for key, events in by_key.items():
            ordered = sort_out(events, self.outputs.decided_through(key))
            for event in ordered.stale:
                self.metrics.stale.labels(type=event.type_label).inc()
                log.info("webhook_stale", shop_id=event.shop_id, order_id=event.order_id, update_time=event.update_time,
                         decided_through=self.outputs.decided_through(key), notification_id=event.notification_id)
            pending += ordered.stale
            if not ordered.fresh:
                continue
            if self._up_to_date(ordered.fresh, self.outputs.decided_through(key)):
                pending += ordered.fresh
                continue
            latest = ordered.latest
            reasons = None if ordered.newest is None or self._queued(latest) else self._reasons_without_fetch(latest)
            if reasons:
                await self._publish_skip(latest, reasons)
                self.outputs.note_decided(key, latest.update_time)
                pending += ordered.fresh
            else:
                self._waiting.setdefault(self._lane(latest), {}).setdefault(latest.order_id, []).extend(ordered.fresh)
        await self.outputs.flush()
        finished += self._records_done(pending)
        self._finish(finished)
        for lane in self._waiting:
            if lane not in self._lanes:
                self._lanes[lane] = asyncio.get_running_loop().create_task(self._drain(lane))

    async def commit(self) -> None:
        """Commit every assigned partition up to its oldest unfinished record (`kafka_consumer_lag` follows)."""
        assigned = self.consumer.assignment()
        points = self.ledger.commit_points()
        due = {tp: offset for tp, offset in points.items()
               if tp in assigned and offset > self._committed.get(tp, -1)}
        if due:
            if await commit_owned(self.consumer, due):
                self._committed.update(due)

    def _apply_backpressure(self) -> None:
        if self.ledger.in_flight() > MAX_IN_FLIGHT:
            self.consumer.pause(*self.consumer.assignment())
        elif self.consumer.paused():
            self.consumer.resume(*self.consumer.paused())

    def _up_to_date(self, fresh: list[OrderEvent], decided_through: int | None) -> bool:
        """Only order checks, none newer than what was decided: nothing to fetch (a sync that found no change)."""
        if decided_through is None or any(e.type != ORDER_CHECK or e.update_time is None or
                                          e.update_time > decided_through for e in fresh):
            return False
        self.metrics.checks.labels(result="up_to_date").inc(len(fresh))
        return True

    def _queued(self, event: OrderEvent) -> bool:
        """A lane has this order waiting or in hand: newer events go through the lane too (ordering)."""
        return event.key in self._fetching or event.order_id in self._waiting.get(self._lane(event), {})

    def _lane(self, event: OrderEvent) -> Lane:
        return lane_of(event.shop_id, event.order_id, self.lanes_per_shop)

    def _reasons_without_fetch(self, event: OrderEvent) -> list[str]:
        """Skip reasons knowable without an API call (a status that cannot qualify, a store that takes no orders)."""
        store = self.table.stores.get(event.shop_id)
        accepted_before = self.outputs.accepted_before(event.key)
        early = skip_without_fetch(event.status, accepted_before)
        blocked = store_reasons(store)
        if early or (blocked and not accepted_before) or (store is not None and store.status == DEAUTHORIZED):
            return ([early] if early else []) + blocked
        return []

    async def _drain(self, lane: Lane) -> None:
        """One of a shop's lanes: fetch and decide its waiting orders until none are left.

        The acknowledgement of one batch's outputs overlaps the next batch's Get Order Detail call: a batch's
        records are finished (committable) only once its outputs are acknowledged, and at most one batch waits."""
        shop_id = lane[0]
        acknowledging: asyncio.Task[None] | None = None
        try:
            while True:
                if not (waiting := self._waiting.get(lane)):
                    if acknowledging is None:
                        break
                    await acknowledging  # orders that arrive meanwhile are this lane's too
                    acknowledging = None
                    continue
                batch = {oid: waiting.pop(oid) for oid in list(itertools.islice(waiting, LANE_BATCH))}
                if not waiting:
                    del self._waiting[lane]
                keys = {order_key(shop_id, oid) for oid in batch}
                self._fetching |= keys
                try:
                    decided = await self._fetch_and_apply(shop_id, batch)
                finally:
                    self._fetching -= keys
                if acknowledging is not None:
                    await acknowledging
                    acknowledging = None
                if decided is not None:
                    acknowledging = asyncio.get_running_loop().create_task(self._acknowledge(decided))
        except Exception as exc:
            self._failure = exc
            raise
        finally:
            if acknowledging is not None and not acknowledging.done():
                acknowledging.cancel()  # stopping: its records stay unfinished and are redelivered
            self._lanes.pop(lane, None)

    async def _acknowledge(self, events: list[OrderEvent]) -> None:
        """Wait until the outputs published so far are acknowledged, then finish the records of `events`."""
        await self.outputs.flush()
        self._finish(self._records_done(events))

    async def _fetch_and_apply(self, shop_id: str, batch: dict[str, list[OrderEvent]]) -> list[OrderEvent] | None:
        """Fetch and decide `batch`; the events decided (their outputs sent, not yet acknowledged), or None when
        stopping (the records stay unfinished and are redelivered)."""
        traced = [events[-1].traceparent for events in batch.values()]  # one call serves the orders of many traces:
        with child_span("Get Order Detail", traced[0], SpanKind.CLIENT, {"shopsync.orders": len(batch)},
                        linked=traced):  # a child of the first order's span, linked to the others'
            fetched = await self.fetcher.fetch(shop_id, list(batch), self._stop)
        if fetched is None:
            return None
        store = self.table.stores.get(shop_id)
        remaining = dict(batch)
        for order in fetched.orders:
            events = remaining.pop(order.id, None)
            if events is not None:
                await self._apply(order, store, events[-1])
                self.outputs.note_decided(events[-1].key, max((e.update_time or 0) for e in events))
        for order_id, events in remaining.items():
            if fetched.store_reasons and order_id not in fetched.failures:
                await self._publish_skip(events[-1], fetched.store_reasons)
            else:
                await self._dead_letter(events[-1].record, fetched.failure_of(order_id))
        return [e for events in batch.values() for e in events]

    async def _apply(self, order: TikTokOrder, store: StoreRecord | None, event: OrderEvent) -> None:
        with bound_contextvars(trace_id=trace_id(event.traceparent), shop_id=event.shop_id, order_id=event.order_id,
                               notification_id=event.notification_id):
            new_to_us = not self.outputs.accepted_before(event.key)
            outcome, reasons = await apply_order(order, event.shop_id, store, self.outputs,
                                                 notification_id=event.notification_id,
                                                 traceparent=event.traceparent)
            log.info("order_decided", outcome=outcome, reasons=list(reasons), check=event.type == ORDER_CHECK)
        self.metrics.count(outcome, reasons)
        if event.type == ORDER_CHECK:
            self.metrics.checks.labels(result="decided").inc()
            if outcome == "accepted" and new_to_us:
                self.metrics.found_by_poll.inc()

    async def _publish_skip(self, event: OrderEvent, reasons: list[str]) -> None:
        store = self.table.stores.get(event.shop_id)
        await self.outputs.publish_skip(event.shop_id, event.order_id, reasons, facts=None, version=None,
                                        nickname=store.nickname if store else "",
                                        notification_id=event.notification_id, traceparent=event.traceparent,
                                        fetched=False)
        self.metrics.count_skip(reasons)

    def _finish(self, records: Iterable[ConsumerRecord]) -> None:
        """Records whose outputs are acknowledged: committable, and their notifications acted on."""
        for record in records:
            self.ledger.finish(TopicPartition(record.topic, record.partition), record.offset)
            if (found := self._unfinished_ids.pop((record.topic, record.partition, record.offset), None)):
                self.notifications.add(*found)

    def _records_done(self, events: list[OrderEvent]) -> list[ConsumerRecord]:
        """The records of `events` that are done: a record is done once every order it names is decided (a
        PACKAGE_UPDATE names several; a redelivered record counts again)."""
        done = []
        for event in events:
            ident = (event.record.topic, event.record.partition, event.record.offset)
            left = self._open_orders.get(ident, 1) - 1
            if left > 0:
                self._open_orders[ident] = left
            else:
                self._open_orders.pop(ident, None)
                done.append(event.record)
        return done

    async def _read(self, record: ConsumerRecord) -> list[OrderEvent]:
        """The order events a webhook names (several for a PACKAGE_UPDATE); authorization events (6, 7) name none,
        the stores owner applies them.

        A record the parser refuses is dead-lettered with the field named, unless its envelope is fine and its
        topic is one the ingest does not act on (a product webhook is store sync's to judge)."""
        if is_check(record.headers):
            return await self._read_check(record)
        try:
            webhook = parse_webhook(record.value or b"")
        except MalformedPayload as exc:
            if exc.event_type is None or exc.event_type in READS:
                await self._dead_letter(record, f"undecodable_webhook: {exc}")
            return []
        event_type, shop_id = webhook.type, webhook.shop_id
        self.metrics.events.labels(type=str(event_type)).inc()
        notification_id = webhook.tts_notification_id
        if notification_id is not None:
            if notification_id in self.notifications:  # TikTok delivered it again: it was acted on
                self.metrics.duplicates.labels(type=str(event_type)).inc()
                log.info("webhook_duplicate", notification_id=notification_id, type=event_type, shop_id=shop_id)
                return []
            self._unfinished_ids[(record.topic, record.partition, record.offset)] = (notification_id,
                                                                                     webhook.timestamp)
        return self._opened(record, order_events(webhook, self._consumed(record), record))

    async def _read_check(self, record: ConsumerRecord) -> list[OrderEvent]:
        """An order check (`shared.order_checks`): an event that only a fetch can decide, dated by the version the
        requester found."""
        try:
            check = parse_check(record.value or b"")
        except MalformedPayload as exc:
            await self._dead_letter(record, f"undecodable_order_check: {exc}")
            return []
        self.metrics.events.labels(type=ORDER_CHECK_LABEL).inc()
        return self._opened(record, [OrderEvent(check.shop_id, check.order_id, ORDER_CHECK, None, check.update_time,
                                                None, self._consumed(record), record)])

    @staticmethod
    def _consumed(record: ConsumerRecord) -> str | None:
        """The record's traceparent, continued by a `consume` span when tracing is on (its events' parent)."""
        received = traceparent_of(record.headers)
        with child_span("consume", received, SpanKind.CONSUMER,
                        {"messaging.destination.name": record.topic, "messaging.kafka.offset": record.offset}) as own:
            return own or received

    def _opened(self, record: ConsumerRecord, events: list[OrderEvent]) -> list[OrderEvent]:
        if events:
            ident = (record.topic, record.partition, record.offset)
            self._open_orders[ident] = self._open_orders.get(ident, 0) + len(events)
        return events

    async def _dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        self.metrics.dlq.labels(reason=reason.split(":")[0]).inc()
        log.error("record_dead_lettered", reason=reason, topic=record.topic, partition=record.partition,
                  offset=record.offset)
        await send_to_dlq(self.producer, self.settings, record, reason, self.clock())

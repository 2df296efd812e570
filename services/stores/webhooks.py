"""TikTok's authorization webhooks (6: deauthorization, 7: authorization expiring) as store commands.

The owner reads `tiktok.webhooks` in its own consumer group and keeps types 6 and 7. It does not apply them here:
this group's partitions are assigned independently of the command topic's, so the instance reading a shop's
webhook may not be the one that writes the shop. Each event becomes an `authorization_event` command under the
shop's key (command id `webhook:{ce_id}`), applied by the shop's one writer like any other command. A webhook whose
`tts_notification_id` this group already forwarded (TikTok pushes again when our 200 reached it late) is counted in
`webhooks_duplicate_total{type}` and dropped; the window is reloaded on assignment, so it survives a restart. The
command id makes a repeat harmless anyway: the owner answers a command id once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from services.stores.metrics import StoresMetrics
from shared.dedupe import NotificationWindow, notification_of, recent_notifications
from shared.envelope import header_map
from shared.kafka import commit_owned
from shared.logging import get_logger
from shared.producer import Sender
from shared.settings import Settings
from shared.stores.commands import AuthorizationEvent, publish_command
from shared.tiktok import event_types

log = get_logger("stores.webhooks")


def authorization_event(record: ConsumerRecord) -> AuthorizationEvent | None:
    """The command a webhook record asks for, or None when it is not a (readable) authorization webhook."""
    try:
        doc: Any = orjson.loads(record.value or b"")
        event_type, shop_id = int(doc["type"]), str(doc["shop_id"])
    except (ValueError, KeyError, TypeError):
        return None  # the ingest dead-letters undecodable webhooks
    if event_type not in event_types.AUTHORIZATION_EVENTS:
        return None
    data = doc.get("data") if isinstance(doc.get("data"), dict) else {}
    pushed_at, notification_id = doc.get("timestamp"), doc.get("tts_notification_id")
    expiration = str(data.get("expiration_time", ""))
    ce_id = header_map(record.headers).get("ce_id") or notification_id or f"{record.partition}:{record.offset}"
    return AuthorizationEvent(command_id=f"webhook:{ce_id}", shop_id=shop_id, event_type=event_type,
                              pushed_at=pushed_at if isinstance(pushed_at, int) else None,
                              notification_id=notification_id if isinstance(notification_id, str) else "",
                              expiration_time=int(expiration) if expiration.isdigit() else None,
                              requested_by="tiktok_webhook")


class AuthorizationFeed(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped: its base is Any
    """The owner's consumer of `tiktok.webhooks`, and its rebalance listener (reloads the notification window)."""

    def __init__(self, settings: Settings, consumer: AIOKafkaConsumer, producer: Sender, metrics: StoresMetrics,
                 window: NotificationWindow | None = None) -> None:
        self._settings = settings
        self._consumer = consumer
        self._producer = producer
        self._metrics = metrics
        self.window = window if window is not None else NotificationWindow()
        self.restored = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Forward authorization webhooks until `stop`; offsets are committed once their commands are on the topic."""
        while not stop.is_set():
            batches = await self._consumer.getmany(timeout_ms=500, max_records=500)
            if not batches:
                continue
            await self.restored.wait()
            owned = self._consumer.assignment()
            done: dict[TopicPartition, int] = {}
            for tp, records in batches.items():
                if tp not in owned:
                    continue  # revoked meanwhile: the partition's new reader forwards it
                for record in records:
                    await self._forward(record)
                done[tp] = records[-1].offset + 1
            if done:
                await commit_owned(self._consumer, done)

    async def _forward(self, record: ConsumerRecord) -> None:
        command = authorization_event(record)
        if command is None:
            return
        notification = notification_of(record.value)
        if notification is not None and notification[0] in self.window:
            self._metrics.duplicates.labels(type=str(command.event_type)).inc()
            log.info("webhook_duplicate", notification_id=notification[0], type=command.event_type,
                     shop_id=command.shop_id)
            return
        await publish_command(self._producer, self._settings, command)
        if notification is not None:
            self.window.add(*notification)

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.restored.clear()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.restored.clear()
        try:
            committed = {tp: await self._consumer.committed(tp) or 0 for tp in assigned}
            recent = await recent_notifications(self._settings, committed, self.window)
            log.info("webhook_partitions_restored", partitions=sorted(tp.partition for tp in assigned),
                     notifications=recent)
        finally:  # a failed reload is logged by aiokafka; the command ids still keep repeats harmless
            self.restored.set()

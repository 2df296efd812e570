"""Which webhook decides: order events are compared by TikTok's `update_time`, never by arrival order.

TikTok retries a webhook it could not deliver (2 min, 30 min, 3 h, 12 h), so a late retry can arrive after a newer
event for the same order. The rule:
- an event strictly older than what was already decided for the order is *stale*: counted, and it changes nothing;
- of the rest, the newest by `update_time` decides; when that is not provable (an event without `update_time`,
  two different events at the newest time), the order is fetched — Order Detail is the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.structs import ConsumerRecord

from shared.orders import order_key
from shared.tiktok.webhooks import ORDER_EVENT_DATA, OrderStatusChange, Webhook

ORDER_CHECK = 0  # not a TikTok webhook type: an order check (`shared.order_checks`), decided only by a fetch
ORDER_CHECK_LABEL = "check"


@dataclass(slots=True)
class OrderEvent:
    """An order-naming webhook (or an order check), reduced to what the decision needs."""

    shop_id: str
    order_id: str
    type: int  # TikTok's webhook type, or ORDER_CHECK
    status: str | None  # the webhook's order status (type 1 only)
    update_time: int | None  # TikTok's time of the change, Unix seconds; None when the webhook has none
    notification_id: str | None
    traceparent: str | None
    record: ConsumerRecord

    @property
    def key(self) -> str:
        return order_key(self.shop_id, self.order_id)

    @property
    def type_label(self) -> str:
        """The metric label of its type: TikTok's number, or `check`."""
        return ORDER_CHECK_LABEL if self.type == ORDER_CHECK else str(self.type)


@dataclass(frozen=True, slots=True)
class Ordered:
    """One order's events of a batch, sorted out."""

    fresh: list[OrderEvent]  # not older than what was decided, oldest first (undated ones last)
    stale: list[OrderEvent]  # older than what was decided: they change nothing
    newest: OrderEvent | None  # the event provably newest; None when only a fetch can tell

    @property
    def latest(self) -> OrderEvent:
        """The event whose notification id and trace the decision carries."""
        return self.newest or self.fresh[-1]


def order_events(webhook: Webhook, traceparent: str | None, record: ConsumerRecord) -> list[OrderEvent]:
    """One event per order an order webhook names (each order of a PACKAGE_UPDATE's `package_list`); none for
    other topics."""
    data = webhook.data
    if not isinstance(data, ORDER_EVENT_DATA):
        return []
    status = data.order_status if isinstance(data, OrderStatusChange) else None
    return [OrderEvent(webhook.shop_id, order_id, webhook.type, status, data.update_time, webhook.tts_notification_id,
                       traceparent, record) for order_id in webhook.order_ids]


def sort_out(events: list[OrderEvent], decided_through: int | None) -> Ordered:
    """Split one order's events into stale and fresh, and find the provably newest fresh one."""
    stale = [e for e in events if _older(e, decided_through)]
    fresh = [e for e in events if not _older(e, decided_through)]
    dated = sorted((e for e in fresh if e.update_time is not None), key=lambda e: e.update_time or 0)
    undated = [e for e in fresh if e.update_time is None]
    newest = None
    if dated and not undated:
        top = [e for e in dated if e.update_time == dated[-1].update_time]
        if len({(e.type, e.status) for e in top}) == 1:  # copies of one event are no doubt
            newest = top[-1]
    return Ordered(dated + undated, stale, newest)


def _older(event: OrderEvent, decided_through: int | None) -> bool:
    return decided_through is not None and event.update_time is not None and event.update_time < decided_through

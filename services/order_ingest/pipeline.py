"""One order through the decision and the outputs: shared by webhook processing and reconciliation."""

from __future__ import annotations

import time
from typing import Literal

from services.order_ingest.decide import OrderFacts, decide
from services.order_ingest.normalize import normalize_order
from services.order_ingest.outputs import OrderOutputs
from shared.orders import WITHDRAWN, order_key
from shared.stores.model import StoreRecord
from shared.tiktok.orders import TikTokOrder

Outcome = Literal["accepted", "skipped", "withdrawn", "unchanged"]
Result = tuple[Outcome, tuple[str, ...]]


async def apply_order(order: TikTokOrder, shop_id: str, store: StoreRecord | None, outputs: OrderOutputs, *,
                      notification_id: str | None = None, traceparent: str | None = None) -> Result:
    """Decide on a fetched order and publish it; (outcome, reasons)."""
    facts = OrderFacts.of(order)
    key = order_key(shop_id, order.id)
    version = order.update_time
    nickname = store.nickname if store else ""
    decision = decide(facts, store, outputs.accepted_before(key))
    outputs.note_decided(key, version)
    now = time.time()
    if decision.kind == "accept":
        sent = await outputs.publish_order(normalize_order(order, shop_id, nickname, now), traceparent)
        return ("accepted" if sent else "unchanged"), ()
    if decision.kind == "withdraw":
        withdrawn = normalize_order(order, shop_id, nickname, now, lifecycle=WITHDRAWN,
                                    withdrawn_reason=",".join(decision.reasons))
        sent = await outputs.publish_order(withdrawn, traceparent)
        return ("withdrawn" if sent else "unchanged"), decision.reasons
    await outputs.publish_skip(shop_id, order.id, list(decision.reasons), facts=facts, version=version,
                               nickname=nickname, notification_id=notification_id, traceparent=traceparent,
                               fetched=True)
    return "skipped", decision.reasons

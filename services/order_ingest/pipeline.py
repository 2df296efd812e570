"""One order through the decision and the outputs: shared by webhook processing and reconciliation."""

from __future__ import annotations

import time
from typing import Any, Literal

from services.order_ingest.decide import decide
from services.order_ingest.normalize import normalize_order, order_facts
from services.order_ingest.outputs import OrderOutputs
from shared.orders import WITHDRAWN, order_key
from shared.stores.model import StoreRecord

Outcome = Literal["accepted", "skipped", "withdrawn", "unchanged"]
Result = tuple[Outcome, tuple[str, ...]]


async def apply_order(raw: dict[str, Any], shop_id: str, store: StoreRecord | None, outputs: OrderOutputs, *,
                      notification_id: str | None = None, traceparent: str | None = None) -> Result:
    """Decide on a fetched order and publish it; (outcome, reasons). Raises ValueError/KeyError if malformed."""
    facts = order_facts(raw)
    key = order_key(shop_id, str(raw["id"]))
    version = int(raw["update_time"])
    nickname = store.nickname if store else ""
    decision = decide(facts, store, outputs.accepted_before(key))
    outputs.note_decided(key, version)
    now = time.time()
    if decision.kind == "accept":
        sent = await outputs.publish_order(normalize_order(raw, shop_id, nickname, now), traceparent)
        return ("accepted" if sent else "unchanged"), ()
    if decision.kind == "withdraw":
        order = normalize_order(raw, shop_id, nickname, now, lifecycle=WITHDRAWN,
                                withdrawn_reason=",".join(decision.reasons))
        sent = await outputs.publish_order(order, traceparent)
        return ("withdrawn" if sent else "unchanged"), decision.reasons
    await outputs.publish_skip(shop_id, str(raw["id"]), list(decision.reasons), facts=facts, version=version,
                               nickname=nickname, notification_id=notification_id, traceparent=traceparent,
                               fetched=True)
    return "skipped", decision.reasons

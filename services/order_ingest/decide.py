"""The ingest decision: which orders the warehouse receives. Pure functions over typed values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.stores.model import DEAUTHORIZED, NEEDS_RELINK, StoreRecord
from shared.tiktok.orders import AWAITING_SHIPMENT, CANCELLED, FULFILLMENT_BY_SELLER, SELLER_SHIPPING, TikTokOrder

Kind = Literal["accept", "skip", "withdraw"]


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """The fields the decision reads ("" where TikTok sent none); `orders.skipped` carries them too."""

    status: str
    fulfillment_type: str
    shipping_type: str
    warehouse_id: str

    @classmethod
    def of(cls, order: TikTokOrder) -> OrderFacts:
        return cls(normalize_status(order.status), order.fulfillment_type or "", order.shipping_type or "",
                   order.warehouse_id or "")


@dataclass(frozen=True, slots=True)
class Decision:
    kind: Kind
    reasons: tuple[str, ...] = ()


def normalize_status(status: str) -> str:
    """Webhooks spell it CANCEL, the Order API CANCELLED: one value."""
    return CANCELLED if status == "CANCEL" else status


def store_reasons(store: StoreRecord | None) -> list[str]:
    """Why orders of this store cannot be accepted at all (empty = the store takes orders)."""
    if store is None:
        return ["store:not_linked"]
    if store.status == DEAUTHORIZED:
        return ["store:deauthorized"]
    if store.status == NEEDS_RELINK:
        return ["store:needs_relink"]
    if not store.is_active:
        return ["store:not_linked"]
    if not store.auto_sync_orders:
        return ["store:auto_sync_off"]
    return []


def reasons_left_out(order: OrderFacts, store: StoreRecord | None) -> list[str]:
    """Every reason the order does not qualify (empty = it qualifies)."""
    reasons = store_reasons(store)
    status = normalize_status(order.status)
    if status != AWAITING_SHIPMENT:
        reasons.append(f"status:{status}")
    if order.fulfillment_type != FULFILLMENT_BY_SELLER:
        reasons.append(f"fulfillment_type:{order.fulfillment_type or 'UNKNOWN'}")
    if order.shipping_type != SELLER_SHIPPING:
        reasons.append(f"shipping_type:{order.shipping_type or 'UNKNOWN'}")
    if store is not None and store.warehouse_ids and order.warehouse_id not in store.warehouse_ids:
        reasons.append(f"warehouse:{order.warehouse_id}:not_linked")
    return reasons


def decide(order: OrderFacts, store: StoreRecord | None, accepted_before: bool) -> Decision:
    """Accept a qualifying order; withdraw one that was accepted and no longer qualifies; otherwise skip."""
    reasons = reasons_left_out(order, store)
    if not reasons:
        return Decision("accept")
    return Decision("withdraw" if accepted_before else "skip", tuple(reasons))


def skip_without_fetch(webhook_status: str | None, accepted_before: bool) -> str | None:
    """A webhook whose status cannot qualify, for an order never accepted, needs no API call: the skip reason."""
    if accepted_before or not webhook_status:
        return None
    status = normalize_status(webhook_status)
    return None if status == AWAITING_SHIPMENT else f"status:{status}"

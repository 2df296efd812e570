"""A plain-language verdict, with the fix, from an order's timeline (pure)."""

from __future__ import annotations

from typing import Any

from shared.stores.model import StoreRecord

REASON_TEXT = {
    "status:ON_HOLD": "the order is ON_HOLD (the buyer can still cancel); it arrives when TikTok moves it to "
                      "AWAITING_SHIPMENT, about an hour after payment",
    "status:UNPAID": "the order is not paid yet; it arrives once paid and out of ON_HOLD",
    "shipping_type:TIKTOK": "TikTok ships this order (platform shipping label), so the warehouse does not",
    "fulfillment_type:FULFILLMENT_BY_TIKTOK": "the order is fulfilled by TikTok (FBT), not by the seller",
    "store:auto_sync_off": "automatic order sync is off for this store: "
                           "run `shopsync stores set {shop} --auto-sync-orders on`",
    "store:deauthorized": "the seller deauthorized the store at TikTok: link it again with `shopsync stores link`",
    "store:not_linked": "the shop {shop} is not linked: run `shopsync stores link --nickname NAME`",
    "store:needs_relink": "the store's tokens do not decrypt with SHOPSYNC_SECRET_KEY: put its key back after the "
                          "current one and run `shopsync stores rotate-key`, or link the store again",
}


def explain(order_id: str, timeline: list[dict[str, Any]], stores: dict[str, StoreRecord]) -> str:
    """The verdict for the order's latest state, and for its shipment back to TikTok when the OMS shipped it."""
    verdict = _order_verdict(order_id, timeline, stores)
    shipment = _shipment_verdict(timeline)
    return f"{verdict} Shipment: {shipment}" if shipment else verdict


def _shipment_verdict(timeline: list[dict[str, Any]]) -> str | None:
    shipped = [e for e in timeline if e["kind"] == "shipment"]
    synced = [e for e in timeline if e["kind"] == "shipment_sync"]
    if not synced:
        if not shipped:
            return None
        last = shipped[-1]["detail"]
        return (f"the OMS shipped it ({last.get('carrier')} {last.get('tracking_number')}) but store sync has not "
                "reported yet (is `shopsync store-sync` running?).")
    last = synced[-1]["detail"]
    if last.get("status") == "applied":
        how = f"with {last['endpoint']}" if last.get("endpoint") else "TikTok already had it"
        return f"tracking number {last.get('tracking_number')} is on TikTok ({how})."
    verb = "NOT sent to TikTok" if last.get("status") == "failed" else "not sent to TikTok"
    return f"{verb}: {last.get('reason')} — {last.get('detail')}"


def _order_verdict(order_id: str, timeline: list[dict[str, Any]], stores: dict[str, StoreRecord]) -> str:
    if not timeline:
        return (f"never seen: shopsync received no webhook for order {order_id}. Check the app's webhook URL in "
                "TikTok Partner Center (…/webhooks/tiktok, ORDER_STATUS_CHANGE), then pull orders now with "
                "`shopsync sync --shop SHOP --since 24h`.")
    shop_id = timeline[-1]["shop_id"]
    store = stores.get(shop_id)
    decisions = [e for e in timeline if e["kind"] in ("accepted", "withdrawn", "skipped", "dead_letter")]
    enrichments = [e for e in timeline if e["kind"] == "enriched"]
    if not decisions:
        return ("received but not decided yet: the ingest has not processed its webhook (is `shopsync ingest` "
                "running? see its log).")
    last = decisions[-1]
    if last["kind"] == "dead_letter":
        return (f"could not be processed: {last['detail']['reason']}. Fix the cause, then "
                "`shopsync dlq redrive --reason ...`.")
    if last["kind"] == "skipped":
        return "skipped: " + "; ".join(reason_fix(r, shop_id, store) for r in last["detail"]["reasons"])
    if last["kind"] == "withdrawn":
        return (f"withdrawn ({last['detail'].get('reason')}): the order no longer qualifies, so the OMS was told to "
                "stop fulfilment.")
    if not enrichments:
        return "accepted, waiting for the mapping service to enrich it (is `shopsync mapping` running?)."
    latest = enrichments[-1]["detail"]
    if latest.get("mapping_state") == "complete":
        return f"delivered to the OMS: every line mapped (revision {latest['revision']} on orders.enriched)."
    problems = []
    for line in latest.get("lines") or []:
        if line["mapping_status"] == "unmapped":
            problems.append(f"waiting on mapping for seller SKU {line['seller_sku']}: run "
                            f"`shopsync mappings set {shop_id} {line['seller_sku']} PRODUCT_CODE`")
        elif line["mapping_status"] == "missing_seller_sku":
            problems.append(f"seller SKU empty on TikTok for product \"{line['product_name']}\" (SKU ID "
                            f"{line['sku_id']}): fill in the seller SKU on TikTok Shop, then map it")
    return "incomplete: " + "; ".join(dict.fromkeys(problems))


def reason_fix(reason: str, shop_id: str, store: StoreRecord | None) -> str:
    """What a skip reason means for this store, and the fix."""
    nickname = store.nickname if store else shop_id
    if reason.startswith("warehouse:"):
        warehouse = reason.split(":")[1]
        linked = ", ".join(dict.fromkeys(store.warehouse_names)) if store else "?"
        return (f"warehouse {warehouse} is not linked for store {nickname} (linked: {linked}); to include it, "
                f"`shopsync stores set {shop_id} --warehouse NAME` with that warehouse's name")
    if reason in REASON_TEXT:
        return REASON_TEXT[reason].format(shop=shop_id)
    if reason.startswith("status:"):
        return f"its status is {reason.split(':', 1)[1]}, not AWAITING_SHIPMENT"
    return reason

"""Reconciliation: pull Search Orders for a linked store and run each order through the same decision.

The seller's "update store orders" button (`shopsync sync`) and the ingest's schedule share this path, so orders
whose webhooks were lost still arrive.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from services.order_ingest.metrics import IngestMetrics
from services.order_ingest.outputs import OrderOutputs
from services.order_ingest.pipeline import apply_order
from shared.logging import get_logger
from shared.orders import order_key
from shared.stores.model import StoreRecord
from shared.stores.table import StoreTable
from shared.stores.tokens import TokenKeeper
from shared.tiktok.client import TikTokClient
from shared.tiktok.orders import AWAITING_SHIPMENT, SELLER_SHIPPING
from shared.tracing import new_traceparent

log = get_logger("order_ingest.reconcile")
OVERLAP_S = 300


async def reconcile_store(store: StoreRecord, client: TikTokClient, tokens: TokenKeeper, outputs: OrderOutputs,
                          since: int, metrics: IngestMetrics | None = None,
                          on_order: Callable[[str], None] | None = None,
                          owns: Callable[[str], bool] | None = None) -> dict[str, int]:
    """Search AWAITING_SHIPMENT, seller-shipped orders of the store's warehouses updated since `since`; with
    `owns`, decide only the orders this ingest instance owns (another instance decides the rest)."""
    auth = await tokens.shop_auth(store.shop_id)
    counts = {"seen": 0, "accepted": 0, "skipped": 0, "withdrawn": 0, "unchanged": 0, "found_by_poll": 0}
    traceparent = new_traceparent()
    async for order in client.search_orders(auth, order_status=AWAITING_SHIPMENT, shipping_type=SELLER_SHIPPING,
                                            update_time_ge=since, warehouse_ids=store.warehouse_ids or None):
        key = order_key(store.shop_id, order.id)
        if owns is not None and not owns(key):
            continue
        counts["seen"] += 1
        new_to_us = not outputs.is_stale(key, order.update_time)
        outcome, reasons = await apply_order(order, store.shop_id, store, outputs, traceparent=traceparent)
        counts[outcome] += 1
        if outcome == "accepted" and new_to_us:
            counts["found_by_poll"] += 1
            if metrics is not None:
                metrics.found_by_poll.inc()
        if metrics is not None:
            metrics.count(outcome, reasons)
        if on_order is not None:
            on_order(outcome)
    await outputs.flush()
    return counts


async def reconcile_forever(table: StoreTable, client: TikTokClient, tokens: TokenKeeper, outputs: OrderOutputs,
                            interval_s: float, metrics: IngestMetrics, stop: asyncio.Event,
                            clock: Callable[[], float] = time.time,
                            owns: Callable[[str], bool] | None = None) -> None:
    """Every `interval_s`, reconcile each linked store with auto-sync on (from the last poll, with overlap)."""
    last_poll: dict[str, int] = {}
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
            return
        except TimeoutError:
            pass
        await tokens.refresh_due()
        for store in list(table.stores.values()):
            if not (store.is_active and store.auto_sync_orders):
                continue
            started = int(clock())
            since = last_poll.get(store.shop_id, started - int(interval_s)) - OVERLAP_S
            try:
                counts = await reconcile_store(store, client, tokens, outputs, since, metrics, owns=owns)
                last_poll[store.shop_id] = started
                log.info("store_reconciled", shop_id=store.shop_id, **counts)
            except Exception as exc:
                log.error("store_reconcile_failed", shop_id=store.shop_id, error=exc.__class__.__name__)

"""Reconciliation: find a linked store's qualifying orders with Search Orders and ask the ingest to decide each.

The seller's "update store orders" button (`shopsync sync`) and the ingest's schedule share this path, so orders
whose webhooks were lost still arrive. Neither decides or publishes an order itself: each order found becomes an
order check (`shared.order_checks`) on `tiktok.webhooks`, decided by the ingest instance that owns the order's
partition, in order with its webhooks. An order already decided at the version found costs no further call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from shared.logging import get_logger
from shared.order_checks import new_check, request_check
from shared.orders import order_key
from shared.producer import Sender
from shared.settings import Settings
from shared.stores.model import StoreRecord
from shared.stores.table import StoreTable
from shared.stores.tokens import TokenKeeper
from shared.tiktok.client import TikTokClient
from shared.tiktok.orders import AWAITING_SHIPMENT, SELLER_SHIPPING
from shared.tracing import new_traceparent

log = get_logger("order_ingest.reconcile")
OVERLAP_S = 300


async def reconcile_store(store: StoreRecord, client: TikTokClient, tokens: TokenKeeper, producer: Sender,
                          settings: Settings, since: int, *, requested_by: str,
                          on_order: Callable[[str], None] | None = None,
                          owns: Callable[[str], bool] | None = None) -> dict[str, int | str]:
    """Search AWAITING_SHIPMENT, seller-shipped orders of the store's warehouses updated since `since` and request
    a check of each; with `owns`, only of the orders this ingest instance owns (the others request the rest).
    Returns the number found and the trace id the checks carry."""
    auth = await tokens.shop_auth(store.shop_id)
    traceparent = new_traceparent()
    found = 0
    sends: list[asyncio.Task[None]] = []
    async for order in client.search_orders(auth, order_status=AWAITING_SHIPMENT, shipping_type=SELLER_SHIPPING,
                                            update_time_ge=since, warehouse_ids=store.warehouse_ids or None):
        if owns is not None and not owns(order_key(store.shop_id, order.id)):
            continue
        found += 1
        check = new_check(store.shop_id, order.id, order.update_time, requested_by)
        sends.append(asyncio.ensure_future(request_check(producer, settings, check, traceparent)))
        if on_order is not None:
            on_order(order.id)
    await asyncio.gather(*sends)  # every check acknowledged: the ingest will decide each
    return {"found": found, "requested": len(sends), "trace_id": traceparent.split("-")[1]}


async def reconcile_forever(table: StoreTable, client: TikTokClient, tokens: TokenKeeper, producer: Sender,
                            settings: Settings, stop: asyncio.Event, clock: Callable[[], float] = time.time,
                            owns: Callable[[str], bool] | None = None) -> None:
    """Every `shopsync_reconcile_interval_s`, reconcile each linked store with auto-sync on (from the last poll, with
    overlap)."""
    interval_s = settings.shopsync_reconcile_interval_s
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
                counts = await reconcile_store(store, client, tokens, producer, settings, since,
                                               requested_by="reconcile", owns=owns)
                last_poll[store.shop_id] = started
                log.info("store_reconciled", shop_id=store.shop_id, **counts)
            except Exception as exc:
                log.error("store_reconcile_failed", shop_id=store.shop_id, error=exc.__class__.__name__)

"""`shopsync explain ORDER_ID`: one order's path through the pipeline, and what to do about it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import click
import httpx

from shared.stores.table import StoreTable
from shopsync.console import fail, json_option, print_json, settings_from
from shopsync.operator.verdict import explain as verdict


def _enriched(d: dict[str, Any]) -> str:
    lines = ", ".join(f"{line['seller_sku'] or '(no seller SKU)'}={line['product_code'] or line['mapping_status']}"
                      for line in d.get("lines") or [])
    return f"enriched r{d.get('revision')} ({d.get('cause')}): {d.get('mapping_state')} — {lines}"


# timeline entry kind -> one line about its detail
SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "webhook": lambda d: f"webhook {d.get('event')} status={d.get('status')} id={d.get('notification_id')}",
    "accepted": lambda d: f"accepted (version {d.get('order_version')}, {d.get('status')})",
    "withdrawn": lambda d: f"withdrawn: {d.get('reason')}",
    "skipped": lambda d: f"skipped: {', '.join(d.get('reasons') or [])}",
    "enriched": _enriched,
    "dead_letter": lambda d: f"dead letter: {d.get('reason')}",
    "shipment": lambda d: f"OMS shipped {d.get('shipment_id')}: {d.get('carrier')} {d.get('tracking_number')}"
                          + (f" lines {', '.join(d['line_item_ids'])}" if d.get("line_item_ids") else ""),
    "shipment_sync": lambda d: f"shipment sync {d.get('status')}"
                               + (f" ({d.get('endpoint')})" if d.get("endpoint") else "")
                               + (f": {d.get('reason')} — {d.get('detail')}" if d.get("reason") else ""),
}


@click.command()
@click.argument("order_id")
@click.option("--shop", default=None, help="Shop id (when order ids could clash across shops).")
@json_option
@click.pass_context
def explain(ctx: click.Context, order_id: str, shop: str | None, as_json: bool) -> None:
    """Timeline (webhooks, decisions, enrichments) and a plain-language verdict with the fix."""
    settings = settings_from(ctx)
    try:
        answer = httpx.get(f"{settings.shopsync_audit_url.rstrip('/')}/orders/{order_id}",
                           params={"shop_id": shop} if shop else None, timeout=10)
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        fail(f"cannot reach the audit service at {settings.shopsync_audit_url} ({exc.__class__.__name__}); "
             "is `shopsync audit` running?")
    timeline = answer.json()
    stores = asyncio.run(StoreTable().load(settings)).stores
    text = verdict(order_id, timeline, stores)
    if as_json:
        print_json({"order_id": order_id, "timeline": timeline, "verdict": text})
        return
    for e in timeline:
        detail = e["detail"]
        summary = SUMMARIES[e["kind"]](detail)
        click.echo(f"{e['at']:<28} {summary}")
    click.echo(f"\nVerdict: {text}")


"""`shopsync explain ORDER_ID`: one order's path through the pipeline, and what to do about it."""

from __future__ import annotations

import asyncio

import click
import httpx

from shared.stores.table import StoreTable
from shopsync.console import fail, json_option, print_json, settings_from
from shopsync.operator.verdict import explain as verdict


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
        d = e["detail"]
        summary = {
            "webhook": lambda: f"webhook {d.get('event')} status={d.get('status')} id={d.get('notification_id')}",
            "accepted": lambda: f"accepted (version {d.get('order_version')}, {d.get('status')})",
            "withdrawn": lambda: f"withdrawn: {d.get('reason')}",
            "skipped": lambda: f"skipped: {', '.join(d.get('reasons') or [])}",
            "enriched": lambda: f"enriched r{d.get('revision')} ({d.get('cause')}): {d.get('mapping_state')} — " + ", ".join(
                f"{l['seller_sku'] or '(no seller SKU)'}={l['product_code'] or l['mapping_status']}" for l in d.get("lines") or []),
            "dead_letter": lambda: f"dead letter: {d.get('reason')}",
            "shipment": lambda: f"OMS shipped {d.get('shipment_id')}: {d.get('carrier')} {d.get('tracking_number')}"
                                + (f" lines {', '.join(d['line_item_ids'])}" if d.get("line_item_ids") else ""),
            "shipment_sync": lambda: f"shipment sync {d.get('status')}"
                                     + (f" ({d.get('endpoint')})" if d.get("endpoint") else "")
                                     + (f": {d.get('reason')} — {d.get('detail')}" if d.get("reason") else ""),
        }[e["kind"]]()
        click.echo(f"{e['at']:<28} {summary}")
    click.echo(f"\nVerdict: {text}")

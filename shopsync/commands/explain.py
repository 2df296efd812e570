"""`shopsync explain ORDER_ID`: one order's path through the pipeline, and what to do about it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import click
import httpx

from shared.settings import Settings
from shared.stores.model import StoreRecord
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


def trace_ids(timeline: list[dict[str, Any]]) -> list[str]:
    """The traces the order's records belong to, first seen first (one per webhook or check, as a rule)."""
    return list(dict.fromkeys(e["detail"]["trace_id"] for e in timeline if e["detail"].get("trace_id")))


def summary_of(entry: dict[str, Any]) -> str:
    """One line about a timeline entry."""
    return SUMMARIES[entry["kind"]](entry["detail"])


async def explain_order(settings: Settings, order_id: str, shop: str | None,
                        stores: dict[str, StoreRecord]) -> tuple[list[dict[str, Any]], str]:
    """The order's timeline from the audit service and the verdict with the fix (httpx.HTTPError when the audit
    service cannot answer)."""
    async with httpx.AsyncClient(base_url=settings.shopsync_audit_url, timeout=10) as http:
        answer = await http.get(f"/orders/{quote(order_id, safe='')}", params={"shop_id": shop} if shop else None)
        answer.raise_for_status()
    timeline: list[dict[str, Any]] = answer.json()
    return timeline, verdict(order_id, timeline, stores)


@click.command()
@click.argument("order_id")
@click.option("--shop", default=None, help="Shop id (when order ids could clash across shops).")
@json_option
@click.pass_context
def explain(ctx: click.Context, order_id: str, shop: str | None, as_json: bool) -> None:
    """Timeline (webhooks, decisions, enrichments) and a plain-language verdict with the fix."""
    settings = settings_from(ctx)
    stores = asyncio.run(StoreTable().load(settings)).stores
    try:
        timeline, text = asyncio.run(explain_order(settings, order_id, shop, stores))
    except httpx.HTTPError as exc:
        fail(f"cannot reach the audit service at {settings.shopsync_audit_url} ({exc.__class__.__name__}); "
             "is `shopsync audit` running?")
    if as_json:
        print_json({"order_id": order_id, "timeline": timeline, "trace_ids": trace_ids(timeline), "verdict": text})
        return
    for e in timeline:
        click.echo(f"{e['at']:<28} {summary_of(e)}")
    if traces := trace_ids(timeline):
        click.echo(f"\nTrace ids: {', '.join(traces)}  (open them in the tracing backend when OTEL export is on)")
    click.echo(f"\nVerdict: {text}")


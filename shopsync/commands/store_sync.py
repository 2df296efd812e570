"""`shopsync store-sync` (the service), and the OMS-side helpers `shopsync ship` and `shopsync inventory`."""

from __future__ import annotations

import asyncio
from typing import Any

import click
import uvicorn

from services.store_sync.service import store_sync_app
from shared.logging import configure_logging
from shared.secrets_check import exit_if_weak_secrets
from shopsync.console import fail, find_store, json_option, print_json, settings_from
from shopsync.oms import publish_shipment, publish_stock, shipment_record, stock_record
from shopsync.operator.inventory_status import inventory_status


@click.command("store-sync")
@click.option("--host", default=None, help="Admin/metrics address (default SHOPSYNC_STORE_SYNC_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Admin/metrics port (default SHOPSYNC_STORE_SYNC_PORT, 8003).")
@click.pass_context
def store_sync(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Send OMS shipments (tracking numbers) and stock levels back to the linked TikTok stores."""
    settings = settings_from(ctx)
    exit_if_weak_secrets(settings, "store-sync")
    configure_logging(settings.shopsync_log_level,
                      "json" if settings.shopsync_log_format == "auto" else settings.shopsync_log_format)
    app = store_sync_app(settings)
    uvicorn.run(app, host=host or settings.shopsync_store_sync_host, port=port or settings.shopsync_store_sync_port,
                log_level="warning")


@click.command()
@click.option("--shop", required=True, help="Shop id or store nickname.")
@click.argument("order_id")
@click.option("--carrier", required=True, help='Carrier name as TikTok lists it, any case ("usps", "J&T Express").')
@click.option("--tracking", required=True, help="Tracking number.")
@click.option("--lines", default=None, help="Comma-separated line item ids (default: every line not yet shipped).")
@click.option("--shipment-id", default=None, help="The OMS's shipment id (default: a new one).")
@json_option
@click.pass_context
def ship(ctx: click.Context, shop: str, order_id: str, carrier: str, tracking: str, lines: str | None,
         shipment_id: str | None, as_json: bool) -> None:
    """Publish a shipment to oms.shipments exactly as an OMS would."""
    settings = settings_from(ctx)
    for name, value in (("ORDER_ID", order_id), ("--carrier", carrier), ("--tracking", tracking)):
        if not value.strip():
            fail(f"{name} must not be empty")
    line_ids = [i.strip() for i in lines.split(",") if i.strip()] if lines is not None else None
    if line_ids is not None and not line_ids:
        fail("--lines must list at least one line item id")
    store = find_store(settings, shop).shop_id
    record = shipment_record(store, order_id, carrier, tracking, line_ids, shipment_id)
    asyncio.run(publish_shipment(settings, record))
    if as_json:
        print_json(record)
    else:
        click.echo(f"Published shipment {record['shipment_id']} for order {order_id} ({carrier} {tracking}); "
                   f"follow it with `shopsync explain {order_id} --shop {store}`")


@click.group()
def inventory() -> None:
    """OMS stock levels: publish one, or see where a product's quantity stands on TikTok."""


@inventory.command("set")
@click.argument("product_code")
@click.argument("quantity", type=click.IntRange(min=0))
@json_option
@click.pass_context
def inventory_set(ctx: click.Context, product_code: str, quantity: int, as_json: bool) -> None:
    """Publish PRODUCT_CODE's sellable QUANTITY to oms.inventory exactly as an OMS would."""
    settings = settings_from(ctx)
    if not product_code.strip():
        fail("PRODUCT_CODE must not be empty")
    record = stock_record(product_code, quantity)
    asyncio.run(publish_stock(settings, record))
    if as_json:
        print_json(record)
    else:
        click.echo(f"Published {product_code} = {quantity}; see it land with `shopsync inventory status "
                   f"{product_code}`")


@inventory.command("status")
@click.argument("product_code")
@json_option
@click.pass_context
def inventory_status_command(ctx: click.Context, product_code: str, as_json: bool) -> None:
    """Per store and SKU: the OMS quantity, the quantity pushed, TikTok's quantity and the last outcome."""
    settings = settings_from(ctx)
    report = asyncio.run(inventory_status(settings, product_code))
    if as_json:
        print_json(report)
        return
    oms = report["oms"]
    click.echo(f"{product_code}: OMS available {oms['available'] if oms else 'unknown (no oms.inventory record)'}"
               + (f" as of {oms['as_of']}" if oms else ""))
    if not report["rows"]:
        click.echo("  no store maps a seller SKU to this product: `shopsync mappings set SHOP SELLER_SKU "
                   f"{product_code}`")
    for row in report["rows"]:
        click.echo(f"  {row['store']:<18} {row['seller_sku']:<14} sku {row['sku_id'] or '-':<22} "
                   f"pushed {_show(row['pushed'])} TikTok {_show(row['tiktok_quantity'])} "
                   f"last {row['last_status'] or '-'}{' ' + row['last_reason'] if row['last_reason'] else ''}")
        if row.get("note"):
            click.echo(f"  {'':<18} {row['note']}")


def _show(value: Any) -> str:
    return f"{'?' if value is None else value:<6}"

"""`shopsync mappings ...`: manage seller SKU → product code mappings through the mapping admin API."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import httpx

from shared.settings import Settings
from shopsync.console import fail, json_option, print_json, settings_from


def _call(settings: Settings, method: str, path: str, **kwargs: Any) -> httpx.Response:
    token = settings.shopsync_admin_token.get_secret_value()
    if not token:
        fail("SHOPSYNC_ADMIN_TOKEN is not set (the same token the mapping service uses)")
    try:
        response = httpx.request(method, settings.shopsync_mapping_url.rstrip("/") + path,
                                 headers={"Authorization": f"Bearer {token}", "X-Shopsync-User": "cli"},
                                 timeout=30, **kwargs)
    except httpx.HTTPError as exc:
        fail(f"cannot reach the mapping service at {settings.shopsync_mapping_url}: {exc.__class__.__name__} "
             "(is `shopsync mapping` running?)")
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        fail(f"{detail} (HTTP {response.status_code})")
    return response


def _path(shop_id: str, seller_sku: str) -> str:
    return f"/mappings/{quote(shop_id, safe='')}/{quote(seller_sku, safe='')}"


@click.group()
def mappings() -> None:
    """Map TikTok seller SKUs to OMS product codes (never the TikTok SKU ID)."""


@mappings.command("set")
@click.argument("shop_id")
@click.argument("seller_sku")
@click.argument("product_code")
@json_option
@click.pass_context
def set_mapping(ctx: click.Context, shop_id: str, seller_sku: str, product_code: str, as_json: bool) -> None:
    """Map SELLER_SKU of SHOP_ID to PRODUCT_CODE; waiting orders are re-emitted automatically."""
    row = _call(settings_from(ctx), "PUT", _path(shop_id, seller_sku), json={"product_code": product_code}).json()
    print_json(row) if as_json else click.echo(f"{shop_id}:{seller_sku} → {row['product_code']} (v{row['version']})")


@mappings.command("get")
@click.argument("shop_id")
@click.argument("seller_sku")
@json_option
@click.pass_context
def get_mapping(ctx: click.Context, shop_id: str, seller_sku: str, as_json: bool) -> None:
    """Show one mapping."""
    row = _call(settings_from(ctx), "GET", _path(shop_id, seller_sku)).json()
    print_json(row) if as_json else click.echo(f"{shop_id}:{seller_sku} → {row['product_code']} (v{row['version']}, "
                                               f"{row['updated_at']} by {row['updated_by']})")


@mappings.command("delete")
@click.argument("shop_id")
@click.argument("seller_sku")
@click.pass_context
def delete_mapping(ctx: click.Context, shop_id: str, seller_sku: str) -> None:
    """Delete a mapping; its open orders become unmapped again."""
    _call(settings_from(ctx), "DELETE", _path(shop_id, seller_sku))
    click.echo(f"deleted {shop_id}:{seller_sku}")


@mappings.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@click.pass_context
def import_mappings(ctx: click.Context, csv_file: Path, as_json: bool) -> None:
    """Import a CSV with header shop_id,seller_sku,product_code (all rows or none)."""
    result = _call(settings_from(ctx), "POST", "/mappings/import", content=csv_file.read_bytes())
    print_json(result.json()) if as_json else click.echo(f"imported {result.json()['imported']} mappings")


@mappings.command("export")
@click.option("--shop", "shop_id", default=None, help="Only this shop.")
@click.pass_context
def export_mappings(ctx: click.Context, shop_id: str | None) -> None:
    """Write every mapping as CSV (importable again) to stdout."""
    rows = _call(settings_from(ctx), "GET", "/mappings", params={"shop_id": shop_id} if shop_id else None).json()
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["shop_id", "seller_sku", "product_code"])
    for row in rows:
        writer.writerow([row["shop_id"], row["seller_sku"], row["product_code"]])


@mappings.command("unmapped")
@click.option("--shop", "shop_id", default=None, help="Only this shop.")
@json_option
@click.pass_context
def unmapped(ctx: click.Context, shop_id: str | None, as_json: bool) -> None:
    """Seller SKUs on open orders that have no mapping, with how many orders wait on each."""
    rows = _call(settings_from(ctx), "GET", "/unmapped", params={"shop_id": shop_id} if shop_id else None).json()
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("Every line of every open order is mapped.")
    for row in rows:
        if row["mapping_status"] == "missing_seller_sku":
            click.echo(f"{row['shop_id']}  (no seller SKU)  {row['orders_waiting']} orders — \"{row['product_name']}\" "
                       f"(SKU ID {row['sku_id']}) has an empty seller SKU on TikTok: fill it in there")
        else:
            click.echo(f"{row['shop_id']}  {row['seller_sku']}  {row['orders_waiting']} orders (e.g. "
                       f"{', '.join(row['order_ids'])}) — run: shopsync mappings set {row['shop_id']} "
                       f"{row['seller_sku']} PRODUCT_CODE")


@mappings.command("preview")
@click.argument("shop_id")
@click.argument("seller_sku")
@click.argument("product_code", required=False)
@json_option
@click.pass_context
def preview(ctx: click.Context, shop_id: str, seller_sku: str, product_code: str | None, as_json: bool) -> None:
    """Dry run: how many open orders setting (or, without PRODUCT_CODE, deleting) a mapping would re-emit."""
    result = _call(settings_from(ctx), "POST", "/mappings/preview",
                   json={"shop_id": shop_id, "seller_sku": seller_sku, "product_code": product_code}).json()
    print_json(result) if as_json else click.echo(
        f"{result['would_reemit']} of {result['open_orders_with_sku']} open orders with {seller_sku} "
        "would be re-emitted")

"""`shopsync stores link|list|set|unlink` and `shopsync keygen`: store connections."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import click

from shared.kafka import create_producer
from shared.settings import Settings
from shared.stores.crypto import MissingSecretKey, TokenCipher, generate_key
from shared.stores.linking import LinkError, new_pending_link
from shared.stores.model import DEAUTHORIZED, StoreRecord
from shared.stores.table import StoreTable, StoreWriter
from shared.stores.warehouses import WarehouseNotFound, resolve_warehouses
from shared.tiktok.client import TikTokClient
from shared.tiktok.errors import TikTokError
from shared.tiktok.models import ShopAuth
from shopsync.console import find_store, fail, json_option, print_json, settings_from

ON_OFF = click.Choice(["on", "off"])


@click.command()
def keygen() -> None:
    """Print a new SHOPSYNC_SECRET_KEY (a Fernet key that encrypts store tokens)."""
    click.echo(generate_key())


@click.group()
def stores() -> None:
    """Link TikTok stores and manage their settings."""


def _cipher(settings: Settings) -> TokenCipher:
    try:
        return TokenCipher(settings.shopsync_secret_key.get_secret_value())
    except MissingSecretKey as exc:
        fail(str(exc))


async def _write(settings: Settings, *records: StoreRecord) -> None:
    producer = create_producer(settings)
    await producer.start()
    try:
        writer = StoreWriter(producer, settings)
        for record in records:
            await writer.put(record)
    finally:
        await producer.stop()


@stores.command()
@click.option("--nickname", required=True, help="Your name for this store, e.g. \"Main store\".")
@click.option("--warehouse", default="", help="TikTok sales warehouse name to sync (blank = all warehouses).")
@click.option("--region", default="", help="The shop's market, e.g. US or GB: US sellers get TikTok's US "
              "authorization host, and of several shops one authorization covers, the one in this region is linked.")
@click.option("--auto-sync-orders", type=ON_OFF, default="on", show_default=True)
@click.option("--auto-sync-shipments", type=ON_OFF, default="on", show_default=True)
@click.option("--auto-sync-inventory", type=ON_OFF, default="on", show_default=True)
@click.option("--inventory-buffer", type=int, default=0, show_default=True, help="Units held back from TikTok.")
@json_option
@click.pass_context
def link(ctx: click.Context, nickname: str, warehouse: str, region: str, auto_sync_orders: str,
         auto_sync_shipments: str, auto_sync_inventory: str, inventory_buffer: int, as_json: bool) -> None:
    """Start linking a store: prints the TikTok authorization URL to open (valid 30 minutes, once)."""
    settings = settings_from(ctx)
    _cipher(settings)
    if not settings.tiktok_service_id:
        fail("TIKTOK_SERVICE_ID is not set (Partner Center → your app → service id)")
    try:
        record, url = new_pending_link(settings, nickname, warehouse, region=region,
                                       auto_sync_orders=auto_sync_orders == "on",
                                       auto_sync_shipments=auto_sync_shipments == "on",
                                       auto_sync_inventory=auto_sync_inventory == "on",
                                       inventory_buffer=inventory_buffer)
    except LinkError as exc:
        fail(str(exc))
    asyncio.run(_write(settings, record))
    if as_json:
        print_json({"authorization_url": url, "expires_at": record.state_expires_at, "nickname": record.nickname,
                    "region": record.region or None})
        return
    click.echo(f"Open this link to authorize \"{record.nickname}\" in TikTok Shop (valid 30 minutes, once):\n{url}")


@stores.command("list")
@json_option
@click.pass_context
def list_stores(ctx: click.Context, as_json: bool) -> None:
    """Linked stores: nickname, shop id, status, warehouses, auto-sync settings, token expiry."""
    settings = settings_from(ctx)
    table = asyncio.run(StoreTable().load(settings))
    rows = [s.public() for s in sorted(table.stores.values(), key=lambda s: s.nickname.casefold())]
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("No stores linked yet. Run `shopsync stores link --nickname NAME [--warehouse NAME]`.")
        return
    for s in rows:
        warehouses = ", ".join(dict.fromkeys(s["warehouse_names"])) or "all warehouses"
        expiry = datetime.fromtimestamp(s["access_token_expires_at"], UTC).strftime("%Y-%m-%d %H:%M UTC")
        click.echo(f"{s['nickname']:<20} {s['shop_id']:<20} {s['status']:<24} {warehouses}")
        click.echo(f"{'':<20} orders {'on' if s['auto_sync_orders'] else 'off'}, shipments "
                   f"{'on' if s['auto_sync_shipments'] else 'off'}, inventory {'on' if s['auto_sync_inventory'] else 'off'}"
                   f" (buffer {s['inventory_buffer']}); token expires {expiry}")


@stores.command("set")
@click.argument("shop")
@click.option("--auto-sync-orders", type=ON_OFF, default=None)
@click.option("--auto-sync-shipments", type=ON_OFF, default=None)
@click.option("--auto-sync-inventory", type=ON_OFF, default=None)
@click.option("--inventory-buffer", type=int, default=None, help="Units held back from TikTok (0 or more).")
@click.option("--warehouse", default=None, help="Sales warehouse name (re-resolved at TikTok; '' = all).")
@json_option
@click.pass_context
def set_store(ctx: click.Context, shop: str, auto_sync_orders: str | None, auto_sync_shipments: str | None,
              auto_sync_inventory: str | None, inventory_buffer: int | None, warehouse: str | None,
              as_json: bool) -> None:
    """Change a linked store's settings (SHOP = shop id or nickname)."""
    settings = settings_from(ctx)
    store = find_store(settings, shop)
    if inventory_buffer is not None and inventory_buffer < 0:
        fail("--inventory-buffer must be 0 or more")
    for name, value in (("auto_sync_orders", auto_sync_orders), ("auto_sync_shipments", auto_sync_shipments),
                        ("auto_sync_inventory", auto_sync_inventory)):
        if value is not None:
            setattr(store, name, value == "on")
    if inventory_buffer is not None:
        store.inventory_buffer = inventory_buffer
    if warehouse is not None:
        asyncio.run(_resolve(settings, store, warehouse))
    asyncio.run(_write(settings, store))
    if as_json:
        print_json(store.public())
    else:
        click.echo(f"Updated {store.nickname} ({store.shop_id}).")


async def _resolve(settings: Settings, store: StoreRecord, warehouse: str) -> None:
    cipher = _cipher(settings)
    async with TikTokClient.from_settings(settings) as client:
        try:
            found = await client.get_warehouses(ShopAuth(store.shop_id, store.shop_cipher,
                                                         cipher.decrypt(store.access_token_enc)))
            matches = resolve_warehouses(warehouse, found)
        except WarehouseNotFound as exc:
            fail(str(exc))
        except TikTokError as exc:
            fail(f"TikTok refused the warehouse list (code {exc.code}, request id {exc.request_id})")
    store.warehouse_name = " ".join(warehouse.split())
    store.warehouse_ids = [w.id for w in matches]
    store.warehouse_names = [w.name for w in matches]


@stores.command()
@click.argument("shop")
@click.pass_context
def unlink(ctx: click.Context, shop: str) -> None:
    """Stop syncing a store (SHOP = shop id or nickname); its tokens are erased."""
    settings = settings_from(ctx)
    store = find_store(settings, shop)
    store.status = DEAUTHORIZED
    store.access_token_enc = store.refresh_token_enc = ""
    store.access_token_expires_at = int(time.time())
    asyncio.run(_write(settings, store))
    click.echo(f"Unlinked {store.nickname} ({store.shop_id}).")

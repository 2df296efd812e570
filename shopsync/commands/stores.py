"""`shopsync stores link|list|set|unlink|rotate-key` and `shopsync keygen`: store connections."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import click

from shared.settings import Settings
from shared.stores.commands import (
    APPLIED,
    FAILED,
    STALE_REVISION,
    UNCHANGED,
    BeginLink,
    CommandResult,
    OwnerNotAnswering,
    RotateKey,
    SetStore,
    StoreCommand,
    Unlink,
    open_store_commands,
)
from shared.stores.crypto import MissingSecretKey, TokenCipher, generate_key
from shared.stores.linking import LinkError, new_pending_link
from shared.stores.model import NEEDS_RELINK, PENDING, StoreRecord
from shared.stores.table import StoreTable
from shopsync.console import fail, json_option, print_json, settings_from

ON_OFF = click.Choice(["on", "off"])
CHANGE_ATTEMPTS = 5  # `stores set` / `unlink` re-read and resend this often when another change landed first


@click.command()
def keygen() -> None:
    """Print a new Fernet key for SHOPSYNC_SECRET_KEY (to rotate: put it first, `new,old`, then `stores rotate-key`)."""
    click.echo(generate_key())


@click.group()
def stores() -> None:
    """Link TikTok stores and manage their settings."""


def _cipher(settings: Settings) -> TokenCipher:
    try:
        return TokenCipher(settings.shopsync_secret_key.get_secret_value())
    except MissingSecretKey as exc:
        fail(str(exc))


async def _request(settings: Settings, command: StoreCommand) -> CommandResult:
    """The stores owner's answer to `command` (the CLI exits naming the problem when it does not answer)."""
    async with open_store_commands(settings, "cli") as commands:
        try:
            return await commands.request(command)
        except OwnerNotAnswering as exc:
            fail(str(exc))


async def _find(settings: Settings, shop: str) -> StoreRecord:
    """The store by shop id or nickname, read from the table now; exits naming the linked stores if unknown."""
    table = await StoreTable().load(settings)
    store = table.find(shop)
    if store is None:
        known = ", ".join(f"{s.nickname} ({s.shop_id})" for s in table.stores.values()) or "none"
        fail(f"unknown shop {shop!r}; linked stores: {known}")
    return store


class StoreNotChanged(Exception):
    """A store change that did not get through (the owner not answering, or the store kept changing)."""


async def change_store(settings: Settings, shop: str, command_for: Callable[[StoreRecord], StoreCommand], *,
                       read: Callable[[Settings, str], Awaitable[StoreRecord]] = _find,
                       attempts: int = CHANGE_ATTEMPTS, requested_by: str = "cli") -> tuple[StoreRecord, CommandResult]:
    """Send the command built from the store as it is now; when another change landed first (`stale_revision`),
    read the store again and send it again, so concurrent changes never lose one. The store as read last and the
    owner's answer; StoreNotChanged when it did not get through (the CLI and the console both change stores so)."""
    async with open_store_commands(settings, requested_by) as commands:
        for _ in range(attempts):
            store = await read(settings, shop)
            try:
                result = await commands.request(command_for(store))
            except OwnerNotAnswering as exc:
                raise StoreNotChanged(str(exc)) from None
            if result.reason != STALE_REVISION:
                return store, result
        raise StoreNotChanged(f"{store.nickname} ({store.shop_id}) kept changing while this command was sent "
                              f"({attempts} attempts, each refused because another change landed first): run it "
                              "again")


def _changed(settings: Settings, shop: str,
             command_for: Callable[[StoreRecord], StoreCommand]) -> tuple[StoreRecord, CommandResult]:
    try:
        return asyncio.run(change_store(settings, shop, command_for))
    except StoreNotChanged as exc:
        fail(str(exc))


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
    result = asyncio.run(_request(settings, BeginLink(record=record)))
    if not result.ok:
        fail(result.message or result.reason)
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
                   f"{'on' if s['auto_sync_shipments'] else 'off'}, "
                   f"inventory {'on' if s['auto_sync_inventory'] else 'off'}"
                   f" (buffer {s['inventory_buffer']}); token expires {expiry}")
        if s["status"] == NEEDS_RELINK:
            click.echo(f"{'':<20} needs relinking: {s['status_reason'] or 'its tokens cannot be used'}; put the "
                       "old key back after the current one and run `shopsync stores rotate-key`, or run "
                       f"`shopsync stores link --nickname \"{s['nickname']}\"`")
        elif s["status_reason"]:
            click.echo(f"{'':<20} {s['status_reason']}")


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
    if inventory_buffer is not None and inventory_buffer < 0:
        fail("--inventory-buffer must be 0 or more")

    def patch(store: StoreRecord) -> StoreCommand:
        return SetStore(shop_id=store.shop_id, based_on=store.revision, warehouse=warehouse,
                        auto_sync_orders=_on(auto_sync_orders), auto_sync_shipments=_on(auto_sync_shipments),
                        auto_sync_inventory=_on(auto_sync_inventory), inventory_buffer=inventory_buffer)

    store, result = _changed(settings, shop, patch)
    if not result.ok:
        fail(result.message or result.reason)
    if as_json:
        print_json(result.store)
    elif result.status == UNCHANGED:
        click.echo(f"{store.nickname} ({store.shop_id}) already has these settings.")
    else:
        click.echo(f"Updated {store.nickname} ({store.shop_id}).")


def _on(value: str | None) -> bool | None:
    return None if value is None else value == "on"


@stores.command()
@click.argument("shop")
@click.pass_context
def unlink(ctx: click.Context, shop: str) -> None:
    """Stop syncing a store (SHOP = shop id or nickname); its tokens are erased."""
    settings = settings_from(ctx)
    store, result = _changed(settings, shop, lambda store: Unlink(shop_id=store.shop_id, based_on=store.revision))
    if not result.ok:
        fail(result.message or result.reason)
    click.echo(f"Unlinked {store.nickname} ({store.shop_id}).")


@dataclass(slots=True)
class Rotation:
    """What `stores rotate-key` did, store by store (named as `nickname (shop id)`, never with a token)."""

    reencrypted: list[StoreRecord] = field(default_factory=list)
    restored: list[StoreRecord] = field(default_factory=list)  # needs_relink for the key, readable again
    current: list[StoreRecord] = field(default_factory=list)
    failed: list[StoreRecord] = field(default_factory=list)

    def as_json(self) -> dict[str, list[dict[str, Any]]]:
        return {name: [{"shop_id": s.shop_id, "nickname": s.nickname, "status": s.status} for s in stores]
                for name, stores in (("reencrypted", self.reencrypted), ("restored", self.restored),
                                     ("already_current", self.current), ("failed", self.failed))}


async def _rotate(settings: Settings) -> Rotation:
    """Ask the owner to re-encrypt every store (and pending shop choice) holding tokens; what it did to each."""
    table = await StoreTable().load(settings)
    records = [r for r in (*table.stores.values(), *table.pending.values())
               if r.access_token_enc or r.refresh_token_enc]
    async with open_store_commands(settings, "cli") as commands:
        try:
            results = await asyncio.gather(*(commands.request(RotateKey(record_key=r.key)) for r in records))
        except OwnerNotAnswering as exc:
            fail(str(exc))
    rotation = Rotation()
    for record, result in zip(records, results, strict=True):
        if result.status == APPLIED and result.reason == "restored":
            rotation.restored.append(replace(record, status=(result.store or {}).get("status", record.status)))
        elif result.status == APPLIED:
            rotation.reencrypted.append(record)
        elif result.reason == "already_current":
            rotation.current.append(record)
        elif result.status == FAILED:
            rotation.failed.append(record)
    return rotation


def _named(stores: list[StoreRecord]) -> str:
    return ", ".join(f"{s.nickname} (pending link)" if s.status == PENDING else f"{s.nickname} ({s.shop_id})"
                     for s in stores)


@stores.command("rotate-key")
@json_option
@click.pass_context
def rotate_key(ctx: click.Context, as_json: bool) -> None:
    """Re-encrypt every store's tokens with the first key of SHOPSYNC_SECRET_KEY (`new,old`: all keys decrypt).

    Run it after putting a new key first, for the stores owner too (it re-encrypts, with its own key list); once
    every store is current, the old keys can be removed. A store marked needs_relink because its tokens did not
    decrypt, whose key is back in the list, is linked again.
    """
    settings = settings_from(ctx)
    cipher = _cipher(settings)
    rotation = asyncio.run(_rotate(settings))
    if as_json:
        print_json(rotation.as_json())
    else:
        done = len(rotation.reencrypted) + len(rotation.restored)
        click.echo(f"Re-encrypted {done} store(s) with the first key of SHOPSYNC_SECRET_KEY; "
                   f"{len(rotation.current)} already used it.")
        if rotation.restored:
            click.echo(f"Linked again (their tokens decrypt again): {_named(rotation.restored)}.")
        if rotation.failed:
            click.echo(f"Could not decrypt {len(rotation.failed)} store(s), left unchanged: {_named(rotation.failed)}. "
                       "Put the key they were encrypted with in SHOPSYNC_SECRET_KEY (after the first), or link them "
                       "again with `shopsync stores link`.", err=True)
        elif cipher.key_count > 1:
            click.echo("Every store uses the first key now: the other keys can be removed from SHOPSYNC_SECRET_KEY.")
    if rotation.failed:
        raise SystemExit(1)

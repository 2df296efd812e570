"""`shopsync sync`: the seller's "update store orders" button: have the ingest decide the store's orders now."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import click
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from services.order_ingest.reconcile import reconcile_store
from shared.kafka import create_producer
from shared.settings import Settings
from shared.stores.commands import StoreCommands
from shared.stores.crypto import MissingSecretKey, TokenCipher
from shared.stores.model import StoreRecord
from shared.stores.table import StoreTable
from shared.stores.tokens import TokenKeeper, TokenRefreshPending
from shared.tiktok.client import TikTokClient
from shared.tiktok.errors import TikTokError
from shopsync.console import fail, json_option, print_json, settings_from
from shopsync.operator.timeparse import parse_time


@click.command()
@click.option("--shop", required=True, help="Shop id or store nickname.")
@click.option("--since", default="24h", show_default=True, help="How far back: 24h, 30m, 7d or an ISO time.")
@json_option
@click.pass_context
def sync(ctx: click.Context, shop: str, since: str, as_json: bool) -> None:
    """Find Awaiting Shipment, seller-shipped orders of the store's warehouses and have the ingest decide each now.

    The ingest decides and publishes (it is the one writer of the order topics); `shopsync explain ORDER_ID` shows
    each decision. An order already decided at the version found is left as it is."""
    settings = settings_from(ctx)
    try:
        since_ts = parse_time(since, time.time())
        cipher = TokenCipher(settings.shopsync_secret_key.get_secret_value())
    except (ValueError, MissingSecretKey) as exc:
        fail(str(exc))
    counts = asyncio.run(_sync(settings, shop, since_ts, cipher, show_progress=not as_json))
    if as_json:
        print_json(counts)
    else:
        click.echo(f"found {counts['found']} orders; the ingest decides each (trace {counts['trace_id']}); "
                   f"`shopsync explain ORDER_ID` shows how")


async def _sync(settings: Settings, shop: str, since: int, cipher: TokenCipher,
                show_progress: bool) -> dict[str, int | str]:
    table = await StoreTable().load(settings)
    store = table.find(shop)
    if store is None:
        fail(f"unknown shop {shop!r}; linked stores: "
             f"{', '.join(f'{s.nickname} ({s.shop_id})' for s in table.stores.values()) or 'none'}")
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed} orders"),
                  TimeElapsedColumn(), disable=not show_progress, transient=True) as progress:
        task = progress.add_task(f"Finding orders of {store.nickname}", total=None)
        try:
            return await update_store_orders(settings, table, store, since, cipher, requested_by="cli",
                                             on_order=lambda _: progress.advance(task))
        except StoreOrdersNotFound as exc:
            fail(str(exc))


class StoreOrdersNotFound(Exception):
    """The store's orders could not be searched; the message says why and what to do."""


async def update_store_orders(settings: Settings, table: StoreTable, store: StoreRecord, since: int,
                              cipher: TokenCipher, *, requested_by: str,
                              on_order: Callable[[str], None] | None = None) -> dict[str, int | str]:
    """The "update store orders" button (the CLI's and the console's): search the store's qualifying orders since
    `since` and have the ingest decide each. Raises StoreOrdersNotFound naming the problem."""
    if not store.is_active:
        raise StoreOrdersNotFound(f"store {store.nickname} ({store.shop_id}) is {store.status}; link it again first")
    producer = create_producer(settings)
    await producer.start()
    client = TikTokClient.from_settings(settings)
    try:
        async with StoreCommands(settings, producer, requested_by=requested_by) as commands, \
                table.following(settings):
            tokens = TokenKeeper(table, commands, client, cipher)  # a refresh is the owner's: the table shows it
            client.on_token_expired = tokens.on_token_expired
            return await reconcile_store(store, client, tokens, producer, settings, since,
                                         requested_by=requested_by, on_order=on_order)
    except TokenRefreshPending as exc:
        raise StoreOrdersNotFound(str(exc)) from None
    except TikTokError as exc:
        raise StoreOrdersNotFound(f"TikTok refused the order search (code {exc.code}, request id {exc.request_id}): "
                                  f"{exc.message}") from None
    finally:
        await client.aclose()
        await producer.stop()

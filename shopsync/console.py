"""Small helpers every CLI command shares: settings, JSON output, errors that name the problem."""

from __future__ import annotations

import asyncio
import sys
from typing import Any, NoReturn, cast

import click
import orjson

from shared.settings import Settings, load_settings
from shared.stores.crypto import MissingSecretKey, TokenCipher
from shared.stores.model import StoreRecord
from shared.stores.table import StoreTable


def settings_from(ctx: click.Context) -> Settings:
    """The settings object the root command loaded."""
    root = ctx.find_root()
    if root.obj is None:
        root.obj = load_settings()
    return cast(Settings, root.obj)  # click types Context.obj Any; only Settings is put there


def print_json(value: Any) -> None:
    """Print `value` as indented JSON on stdout (for `--json` output)."""
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `message` on stderr and exit non-zero."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")


def find_store(settings: Settings, shop: str) -> StoreRecord:
    """The linked store by shop id or nickname, or exit naming the stores there are."""
    table = asyncio.run(StoreTable().load(settings))
    store = table.find(shop)
    if store is None:
        known = ", ".join(f"{s.nickname} ({s.shop_id})" for s in table.stores.values()) or "none"
        fail(f"unknown shop {shop!r}; linked stores: {known}")
    return store


def require_api_secrets(settings: Settings) -> None:
    """Services that call TikTok for linked stores need the token key and the app credentials."""
    try:
        TokenCipher(settings.shopsync_secret_key.get_secret_value())
    except MissingSecretKey as exc:
        fail(str(exc))
    if not settings.tiktok_app_key or not settings.tiktok_app_secret.get_secret_value():
        fail("TIKTOK_APP_KEY and TIKTOK_APP_SECRET must be set")

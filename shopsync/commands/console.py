"""`shopsync console`: the web page for sellers and operators (stores, mappings, orders, sync, operations)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import click
import httpx
import uvicorn
from starlette.applications import Starlette

from services.console.app import create_app
from services.console.mapping_admin import MappingAdmin
from shared.settings import Settings
from shared.stores.table import StoreTable
from shopsync.commands.run import local_url, pipeline_children
from shopsync.console import fail, settings_from
from shopsync.console_wiring import LinkResults, OperatorTools, OwnerStores, console_running


def console_app(settings: Settings) -> Starlette:
    """The console wired to the owners' commands and APIs and the operator tools."""
    table, results = StoreTable(), LinkResults(settings)
    stores = OwnerStores(settings, table, results)
    http = httpx.AsyncClient(base_url=settings.shopsync_mapping_url, timeout=30)
    health = settings.console_health_urls or [
        (c.name, c.url) for c in pipeline_children(settings, demo=False) if c.url and c.name != "console"]

    @contextlib.asynccontextmanager
    async def running() -> AsyncIterator[None]:
        async with http, console_running(settings, table, results):
            try:
                yield
            finally:
                await stores.aclose()

    return create_app(settings, stores=stores,
                      mappings=MappingAdmin(http, settings.shopsync_admin_token.get_secret_value()),
                      operator=OperatorTools(settings, table, health), running=running)


def console_url(settings: Settings) -> str:
    return local_url(settings.shopsync_console_host, settings.shopsync_console_port)


@click.command()
@click.option("--host", default=None, help="Listen address (default SHOPSYNC_CONSOLE_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default SHOPSYNC_CONSOLE_PORT, 8006).")
@click.pass_context
def console(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the console: sign in with SHOPSYNC_ADMIN_TOKEN, SHOPSYNC_CONSOLE_PASSWORD or the read-only token."""
    settings = settings_from(ctx)
    if not (settings.shopsync_admin_token.get_secret_value() or settings.shopsync_console_password.get_secret_value()
            or settings.shopsync_console_readonly_token.get_secret_value()):
        fail("set SHOPSYNC_ADMIN_TOKEN or SHOPSYNC_CONSOLE_PASSWORD (or SHOPSYNC_CONSOLE_READONLY_TOKEN): the console "
             "has no sign-in otherwise")
    uvicorn.run(console_app(settings), host=host or settings.shopsync_console_host,
                port=port or settings.shopsync_console_port, log_level="warning", proxy_headers=True)

"""`shopsync stores-owner`: the stores owner, the one writer of shopsync.stores, with its admin/metrics port."""

from __future__ import annotations

import click
import uvicorn

from services.stores.wiring import owner_app
from shared.logging import configure_logging
from shared.secrets_check import exit_if_weak_secrets
from shopsync.console import settings_from


@click.command("stores-owner")
@click.option("--host", default=None, help="Admin/metrics address (default SHOPSYNC_STORES_OWNER_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Admin/metrics port (default SHOPSYNC_STORES_OWNER_PORT, 8005).")
@click.pass_context
def stores_owner(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Apply store commands (links, token refreshes, settings, unlinks, key rotation) and authorization webhooks."""
    settings = settings_from(ctx)
    exit_if_weak_secrets(settings, "stores-owner")
    configure_logging(settings.shopsync_log_level,
                      "json" if settings.shopsync_log_format == "auto" else settings.shopsync_log_format)
    uvicorn.run(owner_app(settings), host=host or settings.shopsync_stores_owner_host,
                port=port or settings.shopsync_stores_owner_port, log_level="warning")

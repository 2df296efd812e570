"""`shopsync audit`: the per-order timeline index that `shopsync explain` reads."""

from __future__ import annotations

import click
import uvicorn

from shared.secrets_check import exit_if_weak_secrets
from shopsync.console import settings_from


@click.command()
@click.option("--host", default=None, help="Listen address (default SHOPSYNC_AUDIT_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default SHOPSYNC_AUDIT_PORT, 8004).")
@click.pass_context
def audit(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Index webhooks, ingest decisions, enrichments and dead letters by order, for `shopsync explain`."""
    settings = settings_from(ctx)
    exit_if_weak_secrets(settings, "audit")
    uvicorn.run("services.audit.service:app_factory", factory=True,
                host=host or settings.shopsync_audit_host, port=port or settings.shopsync_audit_port,
                log_level="warning")

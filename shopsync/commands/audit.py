"""`shopsync audit`: the per-order timeline index that `shopsync explain` reads."""

from __future__ import annotations

import click
import uvicorn

from shopsync.console import settings_from


@click.command()
@click.option("--port", type=int, default=None, help="Port (default SHOPSYNC_AUDIT_PORT, 8004).")
@click.pass_context
def audit(ctx: click.Context, port: int | None) -> None:
    """Index webhooks, ingest decisions, enrichments and dead letters by order, for `shopsync explain`."""
    settings = settings_from(ctx)
    uvicorn.run("services.audit.service:app_factory", factory=True, host="127.0.0.1",
                port=port or settings.shopsync_audit_port, log_level="warning")

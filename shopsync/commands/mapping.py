"""`shopsync mapping`: the mapping service and its admin API."""

from __future__ import annotations

import click
import uvicorn

from shared.secrets_check import exit_if_weak_secrets
from shopsync.console import settings_from


@click.command()
@click.option("--port", type=int, default=None, help="Admin API port (default SHOPSYNC_MAPPING_PORT, 8001).")
@click.option("--host", default=None, help="Admin API address (default SHOPSYNC_MAPPING_HOST, 127.0.0.1).")
@click.pass_context
def mapping(ctx: click.Context, port: int | None, host: str | None) -> None:
    """Enrich orders.ingested into orders.enriched (seller SKU → product code); re-emit on mapping changes."""
    settings = settings_from(ctx)
    exit_if_weak_secrets(settings, "mapping")
    uvicorn.run("services.mapping.wiring:app_factory", factory=True, host=host or settings.shopsync_mapping_host,
                port=port or settings.shopsync_mapping_port, log_level="warning")

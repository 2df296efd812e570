"""`shopsync mapping`: the mapping service and its admin API."""

from __future__ import annotations

import click
import uvicorn

from services.mapping.api import MissingAdminToken
from services.mapping.wiring import build_app
from shared.logging import configure_logging
from shopsync.console import fail, settings_from


@click.command()
@click.option("--port", type=int, default=None, help="Admin API port (default SHOPSYNC_MAPPING_PORT, 8001).")
@click.option("--host", default=None, help="Admin API address (default SHOPSYNC_MAPPING_HOST, 127.0.0.1).")
@click.pass_context
def mapping(ctx: click.Context, port: int | None, host: str | None) -> None:
    """Enrich orders.ingested into orders.enriched (seller SKU → product code); re-emit on mapping changes."""
    settings = settings_from(ctx)
    try:
        app, _ = build_app(settings)
    except MissingAdminToken as exc:
        fail(str(exc))
    configure_logging(settings.shopsync_log_level, "json" if settings.shopsync_log_format == "auto" else settings.shopsync_log_format)
    uvicorn.run(app, host=host or settings.shopsync_mapping_host, port=port or settings.shopsync_mapping_port,
                log_level="warning")

"""`shopsync ingest`: the order-ingest service with its admin/metrics port."""

from __future__ import annotations

import click
import uvicorn

from services.order_ingest.wiring import ingest_app
from shared.logging import configure_logging
from shared.secrets_check import exit_if_weak_secrets
from shared.telemetry import configure_tracing
from shopsync.console import settings_from


@click.command()
@click.option("--host", default=None, help="Admin/metrics address (default SHOPSYNC_INGEST_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Admin/metrics port (default SHOPSYNC_INGEST_PORT, 8002).")
@click.pass_context
def ingest(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Consume tiktok.webhooks, fetch orders from TikTok, publish accepted / skipped / withdrawn orders."""
    settings = settings_from(ctx)
    exit_if_weak_secrets(settings, "ingest")
    configure_logging(settings.shopsync_log_level,
                      "json" if settings.shopsync_log_format == "auto" else settings.shopsync_log_format)
    configure_tracing("shopsync-ingest")
    app = ingest_app(settings)
    uvicorn.run(app, host=host or settings.shopsync_ingest_host, port=port or settings.shopsync_ingest_port,
                log_level="warning")

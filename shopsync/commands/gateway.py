"""`shopsync gateway`: the webhook gateway under uvicorn."""

from __future__ import annotations

import click
import uvicorn

from shared.secrets_check import exit_if_weak_secrets
from shopsync.console import settings_from


@click.command()
@click.option("--host", default=None, help="Listen address (default SHOPSYNC_GATEWAY_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Listen port (default SHOPSYNC_GATEWAY_PORT, 8000).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes, each with its own Kafka producer (default SHOPSYNC_GATEWAY_WORKERS, 1).")
@click.pass_context
def gateway(ctx: click.Context, host: str | None, port: int | None, workers: int | None) -> None:
    """Receive TikTok Shop webhooks: verify, publish to tiktok.webhooks, answer 200 only after Kafka has them."""
    settings = settings_from(ctx)
    exit_if_weak_secrets(settings, "gateway")
    uvicorn.run("services.webhook_gateway.wiring:app_factory", factory=True,
                host=host or settings.shopsync_gateway_host, port=port or settings.shopsync_gateway_port,
                workers=workers or settings.shopsync_gateway_workers, log_level="warning",
                timeout_graceful_shutdown=10)

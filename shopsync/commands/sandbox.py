"""`shopsync sandbox`: a TikTok Shop stand-in for demos and tests."""

from __future__ import annotations

import click
import uvicorn

from services.tiktok_sandbox.app import create_app
from services.tiktok_sandbox.config import config_from_settings
from shopsync.console import fail, settings_from


@click.command()
@click.option("--host", default=None, help="Listen address (default SHOPSYNC_SANDBOX_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Listen port (default SHOPSYNC_SANDBOX_PORT, 8900).")
@click.option("--webhook-url", default=None, help="Where pushes go (default: the local gateway).")
@click.option("--redirect-url", default=None, help="OAuth redirect (default: the gateway's OAuth callback).")
@click.option("--app-key", default=None, help="App key (default TIKTOK_APP_KEY).")
@click.option("--app-secret", default=None, help="App secret (default TIKTOK_APP_SECRET).")
@click.option("--seed", type=int, default=42, show_default=True, help="Seed of the generated world.")
@click.option("--time-factor", type=float, default=1.0, show_default=True,
              help="Divides TikTok's webhook retry schedule (2 min, 30 min, 3 h, 12 h).")
@click.pass_context
def sandbox(ctx: click.Context, host: str | None, port: int | None, webhook_url: str | None, redirect_url: str | None,
            app_key: str | None, app_secret: str | None, seed: int, time_factor: float) -> None:
    """Serve TikTok's API paths, OAuth consent and signed webhook pushes, with a /sandbox/ control API."""
    settings = settings_from(ctx)
    config = config_from_settings(settings, app_key=app_key, app_secret=app_secret, seed=seed,
                                  time_factor=time_factor, webhook_url=webhook_url, redirect_url=redirect_url)
    if not config.app_key or not config.app_secret:
        fail("--app-key/--app-secret (or TIKTOK_APP_KEY/TIKTOK_APP_SECRET) are required")
    if time_factor <= 0:
        fail("--time-factor must be positive")
    uvicorn.run(create_app(config), host=host or settings.shopsync_sandbox_host,
                port=port or settings.shopsync_sandbox_port, log_level="warning")

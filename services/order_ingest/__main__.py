"""`python -m services.order_ingest`: the ingest with its admin port, settings from the environment."""

import uvicorn

from services.order_ingest.wiring import ingest_app
from shared.logging import configure_logging
from shared.secrets_check import exit_if_weak_secrets
from shared.settings import load_settings
from shared.telemetry import configure_tracing

settings = load_settings()
exit_if_weak_secrets(settings, "ingest")
configure_logging(settings.shopsync_log_level, "json")
configure_tracing("shopsync-ingest")
app = ingest_app(settings)
uvicorn.run(app, host=settings.shopsync_ingest_host, port=settings.shopsync_ingest_port, log_level="warning")

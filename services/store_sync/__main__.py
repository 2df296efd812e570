"""`python -m services.store_sync`: the store-sync service with its admin port, settings from the environment."""

import uvicorn

from services.store_sync.service import store_sync_app
from shared.logging import configure_logging
from shared.secrets_check import exit_if_weak_secrets
from shared.settings import load_settings

settings = load_settings()
exit_if_weak_secrets(settings, "store-sync")
configure_logging(settings.shopsync_log_level, "json")
app = store_sync_app(settings)
uvicorn.run(app, host=settings.shopsync_store_sync_host, port=settings.shopsync_store_sync_port, log_level="warning")

"""`python -m services.stores`: the stores owner with its admin port, settings from the environment."""

import uvicorn

from services.stores.wiring import owner_app
from shared.logging import configure_logging
from shared.secrets_check import exit_if_weak_secrets
from shared.settings import load_settings

settings = load_settings()
exit_if_weak_secrets(settings, "stores-owner")
configure_logging(settings.shopsync_log_level, "json")
uvicorn.run(owner_app(settings), host=settings.shopsync_stores_owner_host,
            port=settings.shopsync_stores_owner_port, log_level="warning")

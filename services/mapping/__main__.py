"""`python -m services.mapping`: the mapping service and admin API, settings from the environment."""

import uvicorn

from shared.secrets_check import exit_if_weak_secrets
from shared.settings import load_settings

settings = load_settings()
exit_if_weak_secrets(settings, "mapping")
uvicorn.run("services.mapping.wiring:app_factory", factory=True, host=settings.shopsync_mapping_host,
            port=settings.shopsync_mapping_port, log_level="warning")

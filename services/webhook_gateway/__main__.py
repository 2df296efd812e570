"""`python -m services.webhook_gateway`: run the gateway with settings from the environment."""

import uvicorn

from shared.secrets_check import exit_if_weak_secrets
from shared.settings import load_settings

settings = load_settings()
exit_if_weak_secrets(settings, "gateway")
uvicorn.run("services.webhook_gateway.wiring:app_factory", factory=True, host=settings.shopsync_gateway_host,
            port=settings.shopsync_gateway_port, workers=settings.shopsync_gateway_workers, log_level="warning")

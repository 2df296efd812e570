"""`python -m services.mapping`: the mapping service and admin API, settings from the environment."""

import uvicorn

from shared.settings import load_settings

settings = load_settings()
uvicorn.run("services.mapping.wiring:app_factory", factory=True, host=settings.shopsync_mapping_host,
            port=settings.shopsync_mapping_port, log_level="warning")

"""`python -m services.mapping`: the mapping service and admin API, settings from the environment."""

import uvicorn

from services.mapping.wiring import build_app
from shared.logging import configure_logging
from shared.settings import load_settings

settings = load_settings()
configure_logging(settings.shopsync_log_level, "json")
app, _ = build_app(settings)
uvicorn.run(app, host=settings.shopsync_mapping_host, port=settings.shopsync_mapping_port, log_level="warning")

"""`python -m services.tiktok_sandbox [--port P]`: the sandbox with defaults from settings."""

import argparse

import uvicorn

from services.tiktok_sandbox.app import create_app
from services.tiktok_sandbox.config import config_from_settings
from shared.settings import load_settings

settings = load_settings()
parser = argparse.ArgumentParser(prog="python -m services.tiktok_sandbox")
parser.add_argument("--port", type=int, default=settings.shopsync_sandbox_port)
uvicorn.run(create_app(config_from_settings(settings)), host="127.0.0.1", port=parser.parse_args().port,
            log_level="warning")

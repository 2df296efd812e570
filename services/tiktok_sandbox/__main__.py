"""`python -m services.tiktok_sandbox [--port P]`: the sandbox with defaults from settings."""

import argparse

import uvicorn

from services.tiktok_sandbox.app import create_app
from services.tiktok_sandbox.config import config_from_settings
from shared.settings import load_settings

settings = load_settings()
parser = argparse.ArgumentParser(prog="python -m services.tiktok_sandbox")
parser.add_argument("--host", default=settings.shopsync_sandbox_host)
parser.add_argument("--port", type=int, default=settings.shopsync_sandbox_port)
args = parser.parse_args()
uvicorn.run(create_app(config_from_settings(settings)), host=args.host, port=args.port, log_level="warning")

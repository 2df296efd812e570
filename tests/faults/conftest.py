"""Fault tests run services as real processes: settings are passed as environment variables."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from pydantic import SecretStr

from shared.settings import Settings
from tests.waiting import eventually


def settings_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment that makes a child process load these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIKTOK_", "SHOPSYNC_", "KAFKA_"))}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[name.upper()] = str(value)
    env["KAFKA_BOOTSTRAP_SERVERS"] = settings.bootstrap_servers
    env.update(overrides)
    return env


class Service:
    """`shopsync <command>` as a child process that can be killed -9 and started again."""

    def __init__(self, args: list[str], env: dict[str, str], health_url: str, log: Path) -> None:
        self.args, self.env, self.health_url, self.log = args, env, health_url, log
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        """Start the process (off the event loop: opening the log and forking block) and wait until it is healthy."""
        self.proc = proc = await asyncio.to_thread(self._spawn)
        async with httpx.AsyncClient(timeout=1) as http:
            async def healthy() -> bool:
                assert proc.poll() is None, self.log.read_text()[-3000:]
                try:
                    return (await http.get(self.health_url)).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(healthy, within=60, every=0.1, what=f"{self.args[0]} healthy at {self.health_url}")

    def _spawn(self) -> subprocess.Popen[bytes]:
        with open(self.log, "ab") as out:
            return subprocess.Popen([sys.executable, "-m", "shopsync", *self.args], env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

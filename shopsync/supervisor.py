"""Start the pipeline's processes for `shopsync run`, and stop them all again on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(slots=True)
class Child:
    """One supervised process: a `shopsync` sub-command and where it says it listens."""

    name: str
    args: list[str]
    url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None


class Supervisor:
    """Runs children with their output in `<logs>/<name>.log`; stops them in reverse order."""

    def __init__(self, logs_dir: Path, env: dict[str, str] | None = None) -> None:
        self.logs_dir = logs_dir
        self.env = env or {}
        self.children: list[Child] = []

    def start(self, child: Child) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.logs_dir / f"{child.name}.log", "ab")
        child.proc = subprocess.Popen(
            [sys.executable, "-m", "shopsync", *child.args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env, **child.env}, start_new_session=True,
        )
        log.close()
        self.children.append(child)

    def dead(self) -> list[Child]:
        """Children that exited on their own."""
        return [c for c in self.children if c.proc is not None and c.proc.poll() is not None]

    def stop_all(self, timeout: float = 15.0) -> None:
        for child in reversed(self.children):
            if child.proc and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in reversed(self.children):
            if child.proc is None:
                continue
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
        self.children.clear()

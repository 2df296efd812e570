"""Process-level safety shared by the services: a crashed main task must not leave a healthy-looking process."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

from shared.logging import get_logger

log = get_logger("process")


def exit_if_failed(service: str) -> Callable[[asyncio.Task[None]], None]:
    """A done-callback for a service's main task: on an exception, log `<service>_crashed` and SIGTERM ourselves
    (the supervisor or orchestrator restarts the process; /healthz stops answering meanwhile)."""

    def callback(task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        log.error(f"{service}_crashed", error=repr(task.exception()))
        os.kill(os.getpid(), signal.SIGTERM)

    return callback

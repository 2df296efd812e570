"""Process-level settings shared by the services: a crashed main task must not leave a healthy-looking process; the
cyclic GC tuned for services that allocate per record."""

from __future__ import annotations

import asyncio
import gc
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


def tune_gc(young: int = 10_000) -> None:
    """Collect less often (a young collection every `young` net allocations), and never walk what start-up built
    again (it lives as long as the process).

    With CPython's defaults (700, 10, 10) a loaded gateway spent ~9% of its time in the cyclic GC, and each full
    collection (~60 ms, several every 10 s) stalled every request in progress: it was the p99. The mapping service,
    which keeps every open order in memory, spent ~20% of its enrichment CPU there. Requests and records make few
    cycles (reference counting frees nearly everything), so young collections every 10,000 allocations suffice.
    """
    gc.collect()
    gc.set_threshold(young, 10, 10)
    gc.freeze()

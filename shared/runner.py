"""Service lifecycle: run until SIGTERM/SIGINT, then shut down gracefully."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

from shared.logging import get_logger

log = get_logger(__name__)


def install_stop_signals(stop: asyncio.Event) -> None:
    """Set `stop` on SIGTERM or SIGINT (the running loop's handlers)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def run_until_stopped(main: Callable[[asyncio.Event], Awaitable[None]], name: str) -> None:
    """Run `main(stop)`; `stop` is set by a signal, and `main` must return soon after it is set."""
    stop = asyncio.Event()
    install_stop_signals(stop)
    log.info("service_starting", service=name)
    try:
        await main(stop)
    finally:
        log.info("service_stopped", service=name)


def run_service(main: Callable[[asyncio.Event], Awaitable[None]], name: str) -> None:
    """Blocking entry point for a service's `__main__`."""
    asyncio.run(run_until_stopped(main, name))

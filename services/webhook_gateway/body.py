"""Read a request body with a hard size limit and a read deadline, without buffering what lies past the limit."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import Receive


class BodyTooLarge(Exception):
    """The body exceeds the limit."""


class BodyTimeout(Exception):
    """The body did not arrive in full within the read timeout."""


class ReadDeadlines:
    """Cuts off body reads that outlast `timeout_s`, with one sweeper task instead of a timer per request.

    The reads in progress are a dict of task → deadline; every read has the same timeout, so insertion order is
    deadline order and the sweep stops at the first read still in time. The sweeper cancels the task of a read
    past its deadline, which `read_limited_body` turns into BodyTimeout. It wakes every fifth of the timeout (at
    most every 0.5 s), so a read is cut off between 1 and 1.2 timeouts after it began.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._period = min(0.5, timeout_s / 5)
        self._reading: dict[asyncio.Task[Any], float] = {}
        self._cut: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def start(self, task: asyncio.Task[Any]) -> None:
        """`task` begins reading a body now."""
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        self._reading[task] = time.monotonic() + self.timeout_s

    def finish(self, task: asyncio.Task[Any]) -> None:
        self._reading.pop(task, None)

    def was_cut(self, task: asyncio.Task[Any]) -> bool:
        """Whether `task` was cancelled by its deadline (and not by anything else); forgets it."""
        if task not in self._cut:
            return False
        self._cut.discard(task)
        return True

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._period)
            now = time.monotonic()
            late = []
            for task, deadline in self._reading.items():
                if deadline > now:
                    break
                late.append(task)
            for task in late:
                del self._reading[task]
                self._cut.add(task)
                task.cancel()


async def read_limited_body(receive: Receive, declared: bytes | None, limit: int, deadlines: ReadDeadlines) -> bytes:
    """The raw body bytes from the ASGI `receive`; raises BodyTooLarge as soon as more than `limit` bytes are
    announced (`declared`, the Content-Length header) or arrive, and BodyTimeout when the whole body has not arrived
    within the deadlines' timeout."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    task = asyncio.current_task()
    assert task is not None, "a body is read inside a request task"
    deadlines.start(task)
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    except asyncio.CancelledError:
        if not deadlines.was_cut(task):
            raise
        task.uncancel()
        raise BodyTimeout from None
    finally:
        deadlines.finish(task)

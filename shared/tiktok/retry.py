"""How the TikTok client retries a call, and how a caller learns how many HTTP calls an operation made.

The client is the one retry layer for an HTTP call (style rule 17): callers pass a `RetryPolicy` to its
constructor and decide what to do with the final error; they never retry the call again around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

RETRY_AFTER_CAP_S = 60.0  # a huge (or hostile) Retry-After must not park a worker for hours


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """At most `attempts` HTTP calls per logical call for errors that may pass later (429, 5xx, busy, timeouts).

    Waits between calls double from `base_s` up to `cap_s`, jittered (half to full), and are never shorter than
    the answer's `Retry-After` (itself capped at RETRY_AFTER_CAP_S).
    """

    attempts: int = 6
    base_s: float = 0.2
    cap_s: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1, not {self.attempts}")

    def delay(self, retry: int, retry_after: float | None) -> float:
        """The wait before retry number `retry` (0 = the first retry)."""
        ceiling = min(self.cap_s, self.base_s * 2 ** retry)
        return max(random.uniform(ceiling / 2, ceiling), retry_after or 0.0)


DEFAULT_RETRY = RetryPolicy()
NO_RETRIES = RetryPolicy(attempts=1)
UNLIMITED = sys.maxsize  # `attempts` for a caller that must never give up on a call (until it is stopped)


class Stopped(Exception):
    """The caller is stopping: the call is abandoned during its backoff (raised by `sleep_unless_stopped`)."""


def sleep_unless_stopped(stop: asyncio.Event, stopped: type[Exception] = Stopped
                         ) -> Callable[[float], Awaitable[None]]:
    """A sleep for the client's backoff and pacing that raises `stopped` as soon as `stop` is set."""

    async def sleep(seconds: float) -> None:
        if stop.is_set():
            raise stopped("stopping")
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except TimeoutError:
            return
        raise stopped("stopping")

    return sleep


@dataclass(slots=True)
class CallCount:
    """HTTP calls made to TikTok while it was the current count (retries and token refreshes included)."""

    calls: int = 0


_current: ContextVar[CallCount | None] = ContextVar("tiktok_call_count", default=None)


@contextlib.contextmanager
def counting_calls() -> Iterator[CallCount]:
    """Count the HTTP calls the client makes inside the block (and in tasks started from it)."""
    count = CallCount()
    token = _current.set(count)
    try:
        yield count
    finally:
        _current.reset(token)


def note_call() -> None:
    """The client made one HTTP call."""
    count = _current.get()
    if count is not None:
        count.calls += 1

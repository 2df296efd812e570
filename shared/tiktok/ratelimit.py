"""Client-side rate limiting per (app, shop): requests are spaced to stay under TikTok's QPS limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class RateLimiter:
    """Reserves evenly spaced send slots per key; `acquire` sleeps until the caller's slot.

    With `burst` > 1 up to that many requests may go back to back after an idle period.
    """

    def __init__(self, qps: float, burst: int = 1, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if qps <= 0:
            raise ValueError("qps must be positive")
        self._interval = 1.0 / qps
        self._burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._next: dict[object, float] = {}

    async def acquire(self, key: object) -> None:
        now = self._clock()
        earliest = now - (self._burst - 1) * self._interval
        slot = max(self._next.get(key, earliest), earliest)
        self._next[key] = slot + self._interval
        if slot > now:
            await self._sleep(slot - now)

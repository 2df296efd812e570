"""A small token bucket per client address, for endpoints a person uses a few times (the OAuth callback)."""

from __future__ import annotations

import time
from collections.abc import Callable


class ClientThrottle:
    """`burst` requests at once per client, then one every `1 / per_s` seconds.

    Buckets are kept in least-recently-used order and the oldest dropped past `max_clients`, so a flood from many
    addresses costs bounded memory (a dropped client merely starts again with a full bucket).
    """

    def __init__(self, burst: int = 10, per_s: float = 0.2, *, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._burst = float(burst)
        self._per_s = per_s
        self._max_clients = max_clients
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client → (tokens, when counted)

    def retry_after(self, client: str) -> float:
        """0 when `client` may go ahead (it spends a token), else the seconds until it may."""
        now = self._clock()
        tokens, counted = self._buckets.pop(client, (self._burst, now))
        tokens = min(self._burst, tokens + (now - counted) * self._per_s)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / self._per_s
        self._buckets[client] = (tokens - 1 if wait == 0 else tokens, now)
        while len(self._buckets) > self._max_clients:
            del self._buckets[next(iter(self._buckets))]
        return wait

"""The ordering rule for TikTok's product and inventory webhooks: compared by `data.update_time`, never by arrival.

TikTok retries a webhook it could not deliver (2 min, 30 min, 3 h, 12 h), so an older event can land after a newer
one. Store sync keeps, per product (per SKU for type 27), the newest `update_time` it has acted on; an event
strictly older than that is stale: counted, logged and dropped without an API call. An equal or missing
`update_time` proves nothing, so that event is acted on (acting re-reads TikTok, which is the truth). The memory is
per process and starts empty: forgetting it costs a re-read, never a wrong state.
"""

from __future__ import annotations

from collections.abc import Hashable


def is_stale(newest_acted: int | None, update_time: int | None) -> bool:
    """Whether an event at `update_time` is older than what was already acted on."""
    return newest_acted is not None and update_time is not None and update_time < newest_acted


class NewestActed:
    """The newest `update_time` acted on, per key."""

    def __init__(self) -> None:
        self._newest: dict[Hashable, int] = {}

    def get(self, key: Hashable) -> int | None:
        return self._newest.get(key)

    def is_stale(self, key: Hashable, update_time: int | None) -> bool:
        return is_stale(self._newest.get(key), update_time)

    def acted(self, key: Hashable, update_time: int | None) -> None:
        """Record an event acted on (an older one never lowers the mark)."""
        if update_time is not None:
            self._newest[key] = max(update_time, self._newest.get(key, update_time))

"""The pending store links the OAuth callback answers from: followed in memory, never read per request."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

from aiokafka.errors import KafkaError

from shared.logging import get_logger
from shared.settings import Settings
from shared.stores.model import PENDING_KEY_PREFIX, StoreRecord
from shared.stores.table import StoreTable

log = get_logger("webhook_gateway.pending_links")

STATE_RE = re.compile(r"[A-Za-z0-9_-]{32}")  # secrets.token_urlsafe(24), as `new_pending_link` makes them
FOLLOW_RETRY_S = 2.0
_PENDING_PREFIX = PENDING_KEY_PREFIX.encode()


def well_formed_state(state: str) -> bool:
    """Whether `state` could have been issued by `stores link` (anything else is refused without a lookup)."""
    return STATE_RE.fullmatch(state) is not None


class PendingLinks(StoreTable):
    """Pending links by state, kept up to date from `shopsync.stores` by `StoreTable.follow`.

    `stores link` writes a pending record moments before the seller can come back with its state, so a state not
    seen yet is waited for briefly (`wait_for`), without touching Kafka. A state this instance has taken stays
    used until its tombstone arrives, even if the follower (restarting from the start) replays the record.
    Linked stores are not kept: the callback needs only pending links.
    """

    def __init__(self) -> None:
        super().__init__()
        self._changed = asyncio.Event()
        self._used: set[str] = set()

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None or not key.startswith(_PENDING_PREFIX):
            return
        state = key[len(_PENDING_PREFIX):].decode("utf-8", "replace")
        if state in self._used:
            if value is None:  # its tombstone: nothing left that could bring it back
                self._used.discard(state)
            return
        super().apply(key, value)
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, state: str, timeout_s: float) -> StoreRecord | None:
        """The pending link of `state`, waiting up to `timeout_s` for the follower to bring it; None if unknown
        or already used."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (record := self.pending.get(state)) is None and state not in self._used:
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await changed.wait()
            if loop.time() >= deadline:
                return self.pending.get(state)
        return record

    def take(self, state: str) -> None:
        """Mark `state` used here at once (its tombstone is on its way), so a second request is refused."""
        self.pending.pop(state, None)
        self._used.add(state)

    def give_back(self, record: StoreRecord) -> None:
        """Undo `take` when the tombstone could not be written."""
        self._used.discard(record.state)
        self.pending[record.state] = record

    @contextlib.asynccontextmanager
    async def following(self, settings: Settings) -> AsyncIterator[None]:
        """Follow the stores topic while the block runs (restarting after a Kafka error)."""
        stop = asyncio.Event()
        task = asyncio.get_running_loop().create_task(self._follow(settings, stop))
        try:
            yield
        finally:
            stop.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(self, settings: Settings, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.follow(settings, stop)
            except (KafkaError, OSError) as exc:
                log.warning("pending_links_follow_failed", error=f"{exc.__class__.__name__}: {exc}",
                            retry_in_s=FOLLOW_RETRY_S)
                await asyncio.sleep(FOLLOW_RETRY_S)

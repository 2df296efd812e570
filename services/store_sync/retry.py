"""Service-level retries for TikTok calls that may pass later (429, 5xx, 36009003, timeouts, expired tokens).

This is store sync's one retry layer: its TikTok client is built with `max_retries=0` (`service.store_sync_client`),
so each attempt here is one HTTP call and `attempts` in `sync.results` counts the calls made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import KafkaError

from shared.logging import get_logger
from shared.tiktok.errors import RateLimited, TikTokError, TokenExpired, Transient

T = TypeVar("T")
RETRYABLE = (RateLimited, Transient, TokenExpired)
RETRY_CAP_S = 60.0
log = get_logger("store_sync.retry")


class Interrupted(Exception):
    """The service is stopping: leave the work uncommitted so it is redone after the restart."""


class GaveUp(Exception):
    """Every attempt failed with a retryable error."""

    def __init__(self, last: TikTokError, attempts: int) -> None:
        super().__init__(f"gave up after {attempts} attempts: {last}")
        self.last = last
        self.attempts = attempts


async def with_retries(call: Callable[[], Awaitable[T]], *, max_attempts: int, base_s: float,
                       stop: asyncio.Event, what: str) -> tuple[T, int]:
    """(result, attempts); raises GaveUp, Interrupted, or the first non-retryable error."""
    delay = base_s
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call(), attempt
        except RETRYABLE as exc:
            if attempt >= max_attempts:
                raise GaveUp(exc, attempt) from None
            log.warning("sync_retry", what=what, code=exc.code, attempt=attempt, delay_s=delay)
            wait = max(delay, getattr(exc, "retry_after", None) or 0.0)
        try:
            await asyncio.wait_for(stop.wait(), wait)
        except TimeoutError:
            pass
        else:
            raise Interrupted(what)
        delay = min(RETRY_CAP_S, delay * 2)


async def until_kafka_accepts(call: Callable[[], Awaitable[T]], *, stop: asyncio.Event, what: str) -> T:
    """Retry a publish or commit while the broker is away (however long); Interrupted if stopped meanwhile.

    Publishing the same results twice after a partial failure is harmless: they are outcomes, read latest-wins.
    """
    delay = 0.5
    while True:
        try:
            return await call()
        except KafkaError as exc:
            log.warning("kafka_unavailable", what=what, error=exc.__class__.__name__, delay_s=delay)
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            pass
        else:
            raise Interrupted(what)
        delay = min(10.0, delay * 2)

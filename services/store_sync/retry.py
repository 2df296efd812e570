"""Store sync's waits: the TikTok client's retry policy, an interruptible sleep for it, and Kafka outages.

The TikTok client is the one retry layer for an HTTP call (`store_sync_policy` sets its attempts from
SHOPSYNC_SYNC_MAX_ATTEMPTS); store sync only decides what a final error means. `attempts` in `sync.results` is the
number of HTTP calls made (`shared.tiktok.retry.counting_calls`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import KafkaError

from shared.logging import get_logger
from shared.settings import Settings
from shared.tiktok.errors import RateLimited, TokenExpired, Transient
from shared.tiktok.retry import RetryPolicy
from shared.tiktok.retry import sleep_unless_stopped as stopping_sleep

T = TypeVar("T")
UNAVAILABLE = (RateLimited, Transient, TokenExpired)  # what the client's retries (and one token refresh) did not pass
RETRY_CAP_S = 60.0
log = get_logger("store_sync.retry")


class Interrupted(Exception):
    """The service is stopping: leave the work uncommitted so it is redone after the restart."""


def store_sync_policy(settings: Settings) -> RetryPolicy:
    """Store sync's calls may wait out a long 429 storm: more attempts and a longer cap than a read elsewhere."""
    return RetryPolicy(attempts=settings.shopsync_sync_max_attempts, base_s=settings.shopsync_sync_retry_base_s,
                       cap_s=RETRY_CAP_S)


def sleep_unless_stopped(stop: asyncio.Event) -> Callable[[float], Awaitable[None]]:
    """The client's sleep for store sync: Interrupted as soon as `stop` is set."""
    return stopping_sleep(stop, Interrupted)


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

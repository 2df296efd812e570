"""Get Order Detail for one shop, with the ingest's error policy: wait for what passes, report what never will.

429/5xx/timeouts are retried by the TikTok client alone: the ingest builds it with `ingest_policy` (no attempt limit,
an interruptible backoff), because an order must never be dropped for an outage. What the fetcher itself waits
for is the stores owner: a token it has not refreshed yet (`TokenExpired`) is asked for again after a pause.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from services.order_ingest.decide import store_reasons
from services.order_ingest.metrics import IngestMetrics
from shared.logging import get_logger
from shared.settings import Settings
from shared.stores.table import StoreTable
from shared.stores.tokens import StoreNeedsRelink, StoreUnavailable, TokenKeeper
from shared.tiktok.client import TikTokClient
from shared.tiktok.errors import (
    MalformedPayload,
    NotFound,
    PermissionDenied,
    RateLimited,
    TikTokError,
    TokenExpired,
    Transient,
)
from shared.tiktok.orders import TikTokOrder
from shared.tiktok.retry import UNLIMITED, RetryPolicy, Stopped

log = get_logger("order_ingest.fetch")
RETRY_CAP_S = 60.0


@dataclass(slots=True)
class Fetched:
    """The orders TikTok returned; ids asked for and not returned are dead-lettered with their reason in
    `failures` (an order TikTok answered malformed: `malformed_order: <field> ...`), else with `failure`
    (order_not_found unless said otherwise), or skipped with `store_reasons` when the store cannot be called
    (not linked, deauthorized, or `needs_relink` because its tokens do not decrypt)."""

    orders: list[TikTokOrder] = field(default_factory=list)
    failure: str = "order_not_found"
    store_reasons: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)

    def failure_of(self, order_id: str) -> str:
        return self.failures.get(order_id, self.failure)


def ingest_policy(settings: Settings) -> RetryPolicy:
    """The ingest's client: retry until TikTok answers (or the worker stops), waits doubling up to a minute."""
    return RetryPolicy(attempts=UNLIMITED, base_s=0.2, cap_s=RETRY_CAP_S)


class OrderFetcher:
    """Orders by id; an expired token waits for the owner's refresh until the worker stops; permanent errors
    (permission denied, not found, other API errors) and a client that gave up (a bounded policy) are returned as a
    failure reason."""

    def __init__(self, table: StoreTable, tokens: TokenKeeper, client: TikTokClient, metrics: IngestMetrics,
                 retry_base_s: float = 1.0) -> None:
        self.table = table
        self.tokens = tokens
        self.client = client
        self.metrics = metrics
        self.retry_base_s = retry_base_s

    async def fetch(self, shop_id: str, ids: list[str], stop: asyncio.Event) -> Fetched | None:
        """The shop's orders by id; None when the worker stopped before they could be fetched."""
        delay = self.retry_base_s
        while True:
            try:
                auth = await self.tokens.shop_auth(shop_id)
                self.metrics.api_calls.labels(call="get_order_detail").inc()
                return Fetched(await self.client.get_order_detail(auth, ids))
            except StoreNeedsRelink:
                return Fetched(store_reasons=["store:needs_relink"])  # the keeper marked the store
            except StoreUnavailable:
                return Fetched(store_reasons=store_reasons(self.table.stores.get(shop_id)) or ["store:not_linked"])
            except NotFound as exc:
                self._count(exc)
                return await self._one_by_one(shop_id, ids, stop)
            except MalformedPayload as exc:
                log.error("order_malformed", shop_id=shop_id, field=exc.field, reason=exc.reason, orders=len(ids))
                if len(ids) == 1:
                    return Fetched(failure=f"malformed_order: {exc}")
                return await self._one_by_one(shop_id, ids, stop)
            except Stopped:
                return None
            except TokenExpired as exc:
                self._count(exc)
                log.warning("order_fetch_waits_for_token", shop_id=shop_id, code=exc.code, delay_s=delay)
            except (RateLimited, Transient) as exc:  # only a client with a bounded policy gives up
                self._count(exc)
                log.error("order_fetch_gave_up", shop_id=shop_id, code=exc.code, request_id=exc.request_id)
                return Fetched(failure=f"tiktok_unavailable: code {exc.code}, request_id {exc.request_id}")
            except TikTokError as exc:
                self._count(exc)
                kind = "permission_denied" if isinstance(exc, PermissionDenied) else "tiktok_error"
                log.error("order_fetch_failed", shop_id=shop_id, error=kind, code=exc.code, request_id=exc.request_id)
                return Fetched(failure=f"{kind}: code {exc.code}, request_id {exc.request_id}")
            if await _stopped_within(stop, delay):
                return None
            delay = min(RETRY_CAP_S, delay * 2)

    async def _one_by_one(self, shop_id: str, ids: list[str], stop: asyncio.Event) -> Fetched | None:
        """A batch with an unknown (or malformed) order fails as a whole: ask for each id alone to find it."""
        if len(ids) == 1:
            return Fetched()
        fetched = Fetched()
        for one in ids:
            result = await self.fetch(shop_id, [one], stop)
            if result is None:
                return None
            if result.store_reasons:
                fetched.store_reasons = result.store_reasons
            elif not result.orders:
                fetched.failures[one] = result.failure_of(one)
            fetched.orders += result.orders
        return fetched

    def _count(self, exc: TikTokError) -> None:
        self.metrics.api_errors.labels(code=str(exc.code)).inc()


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True

"""Access tokens for shop-scoped calls: decrypted on demand, refreshed before they expire (and on 105002).

The keeper never writes the table: it asks the stores owner (`RefreshTokens`, based on the revision it read) and
waits for its table to show a newer revision. Two keepers asking for the same revision cause one refresh at
TikTok (the second request is refused as stale, and the first one's write answers both). A due refresh the owner
does not answer in time falls back to the current token while it is still valid.

A store whose tokens no key of SHOPSYNC_SECRET_KEY decrypts is that store's problem alone: the keeper asks the
owner to mark it `needs_relink` (the owner checks with its own keys) and callers get StoreNeedsRelink, a
StoreUnavailable, like for any unlinked store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from typing import NoReturn

from shared.logging import get_logger
from shared.stores.commands import (
    APPLIED,
    STALE_REVISION,
    CommandResult,
    MarkNeedsRelink,
    OwnerNotAnswering,
    RefreshTokens,
    StoreCommands,
)
from shared.stores.crypto import KEY_MISMATCH, KeyMismatch, TokenCipher
from shared.stores.model import EXPIRING, LINKED, NEEDS_RELINK, StoreRecord
from shared.stores.table import StoreTable, TableNotUpdated
from shared.tiktok.client import TikTokClient
from shared.tiktok.errors import TikTokError, TokenExpired
from shared.tiktok.models import ShopAuth

log = get_logger("stores.tokens")
REFRESH_AHEAD_S = 24 * 3600
TOKEN_EXPIRED = 105002


class StoreUnavailable(RuntimeError):
    """The store is not linked (or deauthorized): no API calls for it."""


class StoreNeedsRelink(StoreUnavailable):
    """The store's tokens do not decrypt with SHOPSYNC_SECRET_KEY: it is now marked `needs_relink`."""


class TokenRefreshPending(TokenExpired):
    """The token has expired and its refresh has not come through (the stores owner did not answer in time, its
    write did not reach the table in time, or TikTok was unavailable for it): retry later, like any expired token."""

    def __init__(self, shop_id: str, why: object) -> None:
        super().__init__(f"store {shop_id}: token refresh not done: {why}", code=TOKEN_EXPIRED)
        self.shop_id = shop_id


class TokenRefreshFailed(TikTokError):
    """The stores owner asked TikTok to refresh the tokens and TikTok refused (code and request id are TikTok's)."""

    def __init__(self, shop_id: str, result: CommandResult) -> None:
        super().__init__(f"store {shop_id}: {result.message or result.reason}", code=result.tiktok_code,
                         request_id=result.request_id)
        self.result = result


class TokenKeeper:
    """Hands out ShopAuth for linked stores and has the stores owner refresh tokens (one request per shop at a
    time). `table` must be followed (`StoreTable.follow`) for the keeper to see the owner's writes."""

    def __init__(self, table: StoreTable, commands: StoreCommands, client: TikTokClient, cipher: TokenCipher,
                 clock: Callable[[], float] = time.time, wait_s: float | None = None) -> None:
        self._table = table
        self._commands = commands
        self._client = client
        self._cipher = cipher
        self._clock = clock
        self._wait_s = commands.default_wait_s if wait_s is None else wait_s
        self._locks: dict[str, asyncio.Lock] = {}

    async def shop_auth(self, shop_id: str) -> ShopAuth:
        store = self._active(shop_id)
        if store.access_token_expires_at - self._clock() < REFRESH_AHEAD_S:
            await self.refresh(shop_id, only_if_due=True)
            store = self._active(shop_id)
        return ShopAuth(store.shop_id, store.shop_cipher, await self._decrypt(store, store.access_token_enc))

    async def refresh(self, shop_id: str, only_if_due: bool = False) -> str:
        """Have the owner refresh the shop's tokens; the access token of the record it wrote."""
        async with self._locks.setdefault(shop_id, asyncio.Lock()):
            store = self._active(shop_id)
            if only_if_due and not self._due(store):
                return await self._decrypt(store, store.access_token_enc)  # another call refreshed it meanwhile
            still_valid = only_if_due and store.access_token_expires_at > self._clock()
            try:
                result = await self._commands.request(RefreshTokens(shop_id=shop_id, based_on=store.revision),
                                                      wait=self._wait_s)
                if result.status == APPLIED or result.reason == STALE_REVISION:
                    store = await self._table.wait_for_revision(shop_id, store.revision, self._wait_s)
                else:
                    self._raise_for(shop_id, result)
            except (OwnerNotAnswering, TableNotUpdated, TokenRefreshPending) as exc:
                if not still_valid:
                    raise TokenRefreshPending(shop_id, exc) from None
                log.warning("store_token_refresh_late", shop_id=shop_id, error=str(exc))
            except TokenRefreshFailed as exc:
                if not still_valid:
                    raise
                log.warning("store_token_refresh_failed", shop_id=shop_id, code=exc.code, request_id=exc.request_id)
            store = self._active(shop_id)
            return await self._decrypt(store, store.access_token_enc)

    @staticmethod
    def _raise_for(shop_id: str, result: CommandResult) -> NoReturn:
        """The error for an owner's answer other than a refresh."""
        if result.reason in ("not_linked", "unknown_store"):
            raise StoreUnavailable(f"store {shop_id} is not linked ({result.message})")
        if result.reason == "key_mismatch":
            raise StoreNeedsRelink(f"store {shop_id} needs relinking: {KEY_MISMATCH}")
        if result.reason == "tiktok_unavailable":
            raise TokenRefreshPending(shop_id, result.message)
        raise TokenRefreshFailed(shop_id, result)

    def _active(self, shop_id: str) -> StoreRecord:
        store = self._table.stores.get(shop_id)
        if store is None or not store.is_active:
            raise StoreUnavailable(f"store {shop_id} is not linked")
        return store

    def _due(self, store: StoreRecord) -> bool:
        return store.access_token_expires_at - self._clock() < REFRESH_AHEAD_S

    async def _decrypt(self, store: StoreRecord, blob: str) -> str:
        """The token; when it does not decrypt, the owner is asked to mark the store and StoreNeedsRelink raised."""
        try:
            return self._cipher.decrypt(blob)
        except KeyMismatch:
            pass
        log.error("store_needs_relink", shop_id=store.shop_id, nickname=store.nickname, reason=KEY_MISMATCH)
        try:
            result = await self._commands.request(MarkNeedsRelink(shop_id=store.shop_id, based_on=store.revision),
                                                  wait=self._wait_s)
            if result.status == APPLIED:
                await self._table.wait_for_revision(store.shop_id, store.revision, self._wait_s)
            elif result.reason == "tokens_decrypt":
                log.error("store_key_list_outdated", shop_id=store.shop_id, detail=result.message)
        except (OwnerNotAnswering, TableNotUpdated) as exc:
            log.warning("store_needs_relink_not_marked", shop_id=store.shop_id, error=str(exc))
        raise StoreNeedsRelink(f"store {store.shop_id} needs relinking: {KEY_MISMATCH}") from None

    async def on_token_expired(self, shop_id: str) -> str:
        """The client's hook for 105002."""
        return await self.refresh(shop_id)

    async def refresh_due(self) -> None:
        """Refresh every active store whose access token expires within a day."""
        for shop_id, store in list(self._table.stores.items()):
            if store.is_active and self._due(store):
                try:
                    await self.refresh(shop_id, only_if_due=True)
                except Exception as exc:
                    log.error("store_token_refresh_failed", shop_id=shop_id, error=exc.__class__.__name__)


def reencrypt(store: StoreRecord, cipher: TokenCipher) -> StoreRecord | None:
    """`store` with its tokens under the first key of SHOPSYNC_SECRET_KEY, or None when they already are.

    A store marked `needs_relink` because its tokens did not decrypt, and whose tokens decrypt again (its key was put
    back), is linked again. Raises KeyMismatch when no key decrypts its tokens.
    """
    blobs = [blob for blob in (store.access_token_enc, store.refresh_token_enc) if blob]
    marked_for_key = store.status == NEEDS_RELINK and store.status_reason == KEY_MISMATCH
    if not blobs or (all(cipher.is_current(blob) for blob in blobs) and not marked_for_key):
        return None
    rotated = replace(store, access_token_enc=cipher.rotate(store.access_token_enc) if store.access_token_enc else "",
                      refresh_token_enc=cipher.rotate(store.refresh_token_enc) if store.refresh_token_enc else "")
    if marked_for_key:
        rotated.status = EXPIRING if store.authorization_expires_at else LINKED
        rotated.status_reason = ""
    return rotated

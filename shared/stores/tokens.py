"""Access tokens for shop-scoped calls: decrypted on demand, refreshed before they expire (and on 105002).

A store whose tokens no key of SHOPSYNC_SECRET_KEY decrypts is that store's problem alone: it is marked
`needs_relink` (with the reason) and callers get StoreNeedsRelink, a StoreUnavailable, like for any unlinked store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace

from shared.logging import get_logger
from shared.stores.crypto import KEY_MISMATCH, KeyMismatch, TokenCipher
from shared.stores.model import EXPIRING, LINKED, NEEDS_RELINK, StoreRecord
from shared.stores.table import StoreTable, StoreWriter
from shared.tiktok.client import TikTokClient
from shared.tiktok.models import ShopAuth

log = get_logger("stores.tokens")
REFRESH_AHEAD_S = 24 * 3600


class StoreUnavailable(RuntimeError):
    """The store is not linked (or deauthorized): no API calls for it."""


class StoreNeedsRelink(StoreUnavailable):
    """The store's tokens do not decrypt with SHOPSYNC_SECRET_KEY: it is now marked `needs_relink`."""


class TokenKeeper:
    """Hands out ShopAuth for linked stores and refreshes tokens (one refresh per shop at a time)."""

    def __init__(self, table: StoreTable, writer: StoreWriter, client: TikTokClient, cipher: TokenCipher,
                 clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._writer = writer
        self._client = client
        self._cipher = cipher
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}

    async def shop_auth(self, shop_id: str) -> ShopAuth:
        store = self._table.stores.get(shop_id)
        if store is None or not store.is_active:
            raise StoreUnavailable(f"store {shop_id} is not linked")
        if store.access_token_expires_at - self._clock() < REFRESH_AHEAD_S:
            await self.refresh(shop_id, only_if_due=True)
            store = self._table.stores[shop_id]
        return ShopAuth(store.shop_id, store.shop_cipher, await self._decrypt(store, store.access_token_enc))

    async def refresh(self, shop_id: str, only_if_due: bool = False) -> str:
        """Refresh the shop's tokens, store them (encrypted) and return the new access token."""
        lock = self._locks.setdefault(shop_id, asyncio.Lock())
        async with lock:
            store = self._table.stores.get(shop_id)
            if store is None or not store.is_active:
                raise StoreUnavailable(f"store {shop_id} is not linked")
            if only_if_due and store.access_token_expires_at - self._clock() >= REFRESH_AHEAD_S:
                return await self._decrypt(store, store.access_token_enc)
            grant = await self._client.refresh_token(await self._decrypt(store, store.refresh_token_enc))
            store.access_token_enc = self._cipher.encrypt(grant.access_token)
            store.refresh_token_enc = self._cipher.encrypt(grant.refresh_token)
            store.access_token_expires_at = grant.access_token_expire_in
            store.refresh_token_expires_at = grant.refresh_token_expire_in
            await self._writer.put(store)
            log.info("store_token_refreshed", shop_id=shop_id, expires_at=grant.access_token_expire_in)
            return grant.access_token

    async def _decrypt(self, store: StoreRecord, blob: str) -> str:
        """The token; a store whose tokens do not decrypt is marked `needs_relink` and StoreNeedsRelink raised."""
        try:
            return self._cipher.decrypt(blob)
        except KeyMismatch:
            marked = replace(store, status=NEEDS_RELINK, status_reason=KEY_MISMATCH)
            await self._writer.put(marked)
            self._table.stores[store.shop_id] = marked
            log.error("store_needs_relink", shop_id=store.shop_id, nickname=store.nickname, reason=KEY_MISMATCH)
            raise StoreNeedsRelink(f"store {store.shop_id} needs relinking: {KEY_MISMATCH}") from None

    async def on_token_expired(self, shop_id: str) -> str:
        """The client's hook for 105002."""
        return await self.refresh(shop_id)

    async def refresh_due(self) -> None:
        """Refresh every active store whose access token expires within a day."""
        for shop_id, store in list(self._table.stores.items()):
            if store.is_active and store.access_token_expires_at - self._clock() < REFRESH_AHEAD_S:
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

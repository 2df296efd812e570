"""Access tokens for shop-scoped calls: decrypted on demand, refreshed before they expire (and on 105002)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from shared.logging import get_logger
from shared.stores.crypto import TokenCipher
from shared.stores.table import StoreTable, StoreWriter
from shared.tiktok.client import TikTokClient
from shared.tiktok.models import ShopAuth

log = get_logger("stores.tokens")
REFRESH_AHEAD_S = 24 * 3600


class StoreUnavailable(RuntimeError):
    """The store is not linked (or deauthorized): no API calls for it."""


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
        return ShopAuth(store.shop_id, store.shop_cipher, self._cipher.decrypt(store.access_token_enc))

    async def refresh(self, shop_id: str, only_if_due: bool = False) -> str:
        """Refresh the shop's tokens, store them (encrypted) and return the new access token."""
        lock = self._locks.setdefault(shop_id, asyncio.Lock())
        async with lock:
            store = self._table.stores.get(shop_id)
            if store is None or not store.is_active:
                raise StoreUnavailable(f"store {shop_id} is not linked")
            if only_if_due and store.access_token_expires_at - self._clock() >= REFRESH_AHEAD_S:
                return self._cipher.decrypt(store.access_token_enc)
            grant = await self._client.refresh_token(self._cipher.decrypt(store.refresh_token_enc))
            store.access_token_enc = self._cipher.encrypt(grant.access_token)
            store.refresh_token_enc = self._cipher.encrypt(grant.refresh_token)
            store.access_token_expires_at = grant.access_token_expire_in
            store.refresh_token_expires_at = grant.refresh_token_expire_in
            await self._writer.put(store)
            log.info("store_token_refreshed", shop_id=shop_id, expires_at=grant.access_token_expire_in)
            return grant.access_token

    async def on_token_expired(self, shop_id: str) -> str:
        """The client's hook for 105002."""
        return await self.refresh(shop_id)

    async def refresh_due(self) -> None:
        """Refresh every active store whose access token expires within a day."""
        for shop_id, store in list(self._table.stores.items()):
            if store.is_active and store.access_token_expires_at - self._clock() < REFRESH_AHEAD_S:
                try:
                    await self.refresh(shop_id, only_if_due=True)
                except Exception as exc:  # noqa: BLE001 - one store's failure must not stop the others
                    log.error("store_token_refresh_failed", shop_id=shop_id, error=exc.__class__.__name__)

"""The seller's linking journey: a pending link with a single-use state, then the OAuth callback completes it."""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode

from shared.settings import Settings
from shared.stores.crypto import TokenCipher
from shared.stores.model import LINKED, PENDING, STATE_TTL_S, StoreRecord
from shared.stores.warehouses import WarehouseNotFound, resolve_warehouses
from shared.tiktok.client import TikTokClient
from shared.tiktok.models import ShopAuth


class LinkError(ValueError):
    """Linking failed; the message is for the seller (never contains tokens)."""


def new_pending_link(settings: Settings, nickname: str, warehouse: str = "", *, auto_sync_orders: bool = True,
                     auto_sync_shipments: bool = True, auto_sync_inventory: bool = True, inventory_buffer: int = 0,
                     now: float | None = None) -> tuple[StoreRecord, str]:
    """A pending record with a random single-use state (30 minutes) and the authorization URL to open."""
    if not nickname.strip():
        raise LinkError("--nickname must not be empty")
    if inventory_buffer < 0:
        raise LinkError("--inventory-buffer must be 0 or more")
    now = time.time() if now is None else now
    state = secrets.token_urlsafe(24)
    record = StoreRecord(nickname=nickname.strip(), status=PENDING, warehouse_name=" ".join(warehouse.split()),
                         auto_sync_orders=auto_sync_orders, auto_sync_shipments=auto_sync_shipments,
                         auto_sync_inventory=auto_sync_inventory, inventory_buffer=inventory_buffer, state=state,
                         state_expires_at=int(now + STATE_TTL_S), created_at=int(now))
    query = urlencode({"service_id": settings.tiktok_service_id, "state": state})
    return record, f"{settings.tiktok_authorize_url}?{query}"


async def complete_link(pending: StoreRecord, code: str, client: TikTokClient, cipher: TokenCipher,
                        now: float | None = None) -> StoreRecord:
    """Exchange the code, find the shop and its warehouses, resolve the warehouse name; the linked record.

    Raises LinkError (expired state, no shop) or WarehouseNotFound (the message lists the available names).
    """
    now = time.time() if now is None else now
    if pending.state_expires_at < now:
        raise LinkError("This authorization link has expired (links are valid for 30 minutes). "
                        "Run `shopsync stores link` again.")
    grant = await client.get_token(code)
    shops = await client.get_authorized_shops(grant.access_token)
    if not shops:
        raise LinkError("TikTok authorized no shop for this seller account.")
    shop = shops[0]
    warehouses = await client.get_warehouses(ShopAuth(shop.id, shop.cipher, grant.access_token))
    matches = resolve_warehouses(pending.warehouse_name, warehouses)
    return StoreRecord(
        nickname=pending.nickname, status=LINKED, warehouse_name=pending.warehouse_name,
        warehouse_ids=[w.id for w in matches], warehouse_names=[w.name for w in matches],
        auto_sync_orders=pending.auto_sync_orders, auto_sync_shipments=pending.auto_sync_shipments,
        auto_sync_inventory=pending.auto_sync_inventory, inventory_buffer=pending.inventory_buffer,
        shop_id=shop.id, shop_name=shop.name, region=shop.region, shop_cipher=shop.cipher,
        access_token_enc=cipher.encrypt(grant.access_token), refresh_token_enc=cipher.encrypt(grant.refresh_token),
        access_token_expires_at=grant.access_token_expire_in, refresh_token_expires_at=grant.refresh_token_expire_in,
        created_at=pending.created_at or int(now),
    )


__all__ = ["LinkError", "WarehouseNotFound", "complete_link", "new_pending_link"]

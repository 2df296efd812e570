"""The seller's linking journey: a pending link with a single-use state, then the OAuth callback's `link` command,
which the stores owner completes with these steps (it alone writes the records they return).

One authorization can cover several shops (a cross-border seller has one per country, API facts §10.6), so the
shop is never taken blindly: the one the seller named (`--region`, or picked on the callback page) is linked, and
when several remain the callback asks. The code is single use, so while the seller chooses, the tokens wait
(encrypted) in a new pending record whose state the choice links carry.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import replace
from urllib.parse import urlencode

from shared.settings import Settings
from shared.stores.crypto import TokenCipher
from shared.stores.model import LINKED, PENDING, STATE_TTL_S, StoreRecord
from shared.stores.warehouses import WarehouseNotFound, resolve_warehouses
from shared.tiktok.client import TikTokClient
from shared.tiktok.models import AuthorizedShop, ShopAuth

REGION_RE = re.compile(r"[A-Z]{2}")
US = "US"


class LinkError(ValueError):
    """Linking failed; the message is for the seller (never contains tokens)."""


class ShopChoiceNeeded(Exception):
    """The authorization covers several shops: the seller picks one; `pending` holds the tokens meanwhile."""

    def __init__(self, shops: list[AuthorizedShop], pending: StoreRecord) -> None:
        super().__init__(f"{len(shops)} shops to choose from")
        self.shops = shops
        self.pending = pending


def normalize_region(region: str) -> str:
    """`gb` → `GB`; UK is TikTok's GB. Raises LinkError for anything but a two-letter market code."""
    code = region.strip().upper()
    code = "GB" if code == "UK" else code
    if code and not REGION_RE.fullmatch(code):
        raise LinkError(f"--region must be a two-letter market code such as US or GB, not {region!r}")
    return code


def authorize_url(settings: Settings, region: str) -> str:
    """TikTok's authorization page: US sellers have their own host (§10.10), everyone else the global one."""
    return settings.tiktok_authorize_url_us if region == US else settings.tiktok_authorize_url


def new_pending_link(settings: Settings, nickname: str, warehouse: str = "", *, region: str = "",
                     auto_sync_orders: bool = True, auto_sync_shipments: bool = True,
                     auto_sync_inventory: bool = True, inventory_buffer: int = 0,
                     now: float | None = None) -> tuple[StoreRecord, str]:
    """A pending record with a random single-use state (30 minutes) and the authorization URL to open."""
    if not nickname.strip():
        raise LinkError("--nickname must not be empty")
    if inventory_buffer < 0:
        raise LinkError("--inventory-buffer must be 0 or more")
    region = normalize_region(region)
    now = time.time() if now is None else now
    state = secrets.token_urlsafe(24)
    record = StoreRecord(nickname=nickname.strip(), status=PENDING, warehouse_name=" ".join(warehouse.split()),
                         auto_sync_orders=auto_sync_orders, auto_sync_shipments=auto_sync_shipments,
                         auto_sync_inventory=auto_sync_inventory, inventory_buffer=inventory_buffer, region=region,
                         state=state, state_expires_at=int(now + STATE_TTL_S), created_at=int(now))
    query = urlencode({"service_id": settings.tiktok_service_id, "state": state})
    return record, f"{authorize_url(settings, region)}?{query}"


def choose_shop(shops: list[AuthorizedShop], *, region: str = "", shop_id: str = "") -> AuthorizedShop | None:
    """The shop to link, or None when the seller must pick among several. Raises LinkError when the shop the
    seller named (by id or region) is not among those the authorization covers."""
    if not shops:
        raise LinkError("TikTok authorized no shop for this seller account.")
    covered = ", ".join(f"{s.name} ({s.region})" for s in shops)
    if shop_id:
        chosen = next((s for s in shops if s.id == shop_id), None)
        if chosen is None:
            raise LinkError(f"Shop {shop_id} is not one of the shops this authorization covers: {covered}.")
        return chosen
    candidates = [s for s in shops if s.region == region] if region else shops
    if not candidates:
        raise LinkError(f"This authorization covers no shop in region {region}; it covers {covered}. "
                        "Run `shopsync stores link` again with one of those regions, or none.")
    return candidates[0] if len(candidates) == 1 else None


async def complete_link(pending: StoreRecord, code: str, client: TikTokClient, cipher: TokenCipher,
                        now: float | None = None) -> StoreRecord:
    """Exchange the code, pick the shop, resolve the warehouse name; the linked record.

    Raises LinkError (expired state, no or unknown shop), WarehouseNotFound (the message lists the available
    names) or ShopChoiceNeeded (several shops: a new pending record holding the tokens, to store).
    """
    now = time.time() if now is None else now
    if pending.state_expires_at < now:
        raise LinkError("This authorization link has expired (links are valid for 30 minutes). "
                        "Run `shopsync stores link` again.")
    grant = await client.get_token(code)
    with_tokens = replace(pending, access_token_enc=cipher.encrypt(grant.access_token),
                          refresh_token_enc=cipher.encrypt(grant.refresh_token),
                          access_token_expires_at=grant.access_token_expire_in,
                          refresh_token_expires_at=grant.refresh_token_expire_in)
    shops = await client.get_authorized_shops(grant.access_token)
    shop = choose_shop(shops, region=pending.region)
    if shop is None:
        choice = replace(with_tokens, state=secrets.token_urlsafe(24), state_expires_at=int(now + STATE_TTL_S))
        raise ShopChoiceNeeded([s for s in shops if not pending.region or s.region == pending.region], choice)
    return await _link(with_tokens, shop, grant.access_token, client, now)


async def complete_choice(choice: StoreRecord, shop_id: str, client: TikTokClient, cipher: TokenCipher,
                          now: float | None = None) -> StoreRecord:
    """The seller picked `shop_id` on the callback page: link it with the tokens `choice` kept."""
    now = time.time() if now is None else now
    if choice.state_expires_at < now or not choice.access_token_enc:
        raise LinkError("This choice has expired (30 minutes). Run `shopsync stores link` again.")
    access_token = cipher.decrypt(choice.access_token_enc)
    shop = choose_shop(await client.get_authorized_shops(access_token), shop_id=shop_id)
    assert shop is not None
    return await _link(choice, shop, access_token, client, now)


async def _link(pending: StoreRecord, shop: AuthorizedShop, access_token: str, client: TikTokClient,
                now: float) -> StoreRecord:
    warehouses = await client.get_warehouses(ShopAuth(shop.id, shop.cipher, access_token))
    matches = resolve_warehouses(pending.warehouse_name, warehouses)
    return replace(pending, status=LINKED, warehouse_ids=[w.id for w in matches],
                   warehouse_names=[w.name for w in matches], shop_id=shop.id, shop_name=shop.name,
                   region=shop.region, shop_cipher=shop.cipher, state="", state_expires_at=0,
                   authorized_at=int(now), created_at=pending.created_at or int(now))


__all__ = ["LinkError", "ShopChoiceNeeded", "WarehouseNotFound", "authorize_url", "choose_shop", "complete_choice",
           "complete_link", "new_pending_link", "normalize_region"]

"""Typed results of the TikTok auth, shop and logistics calls shopsync makes (orders: `orders`; webhooks:
`webhooks`), read by the rules of `shared.tiktok.fields`."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.tiktok.fields import Fields


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """Tokens from the auth host; both expiry fields are absolute Unix times (not TTLs)."""

    access_token: str
    access_token_expire_in: int
    refresh_token: str
    refresh_token_expire_in: int
    open_id: str = ""
    seller_name: str = ""
    seller_base_region: str = ""
    granted_scopes: list[str] = field(default_factory=list)

    @classmethod
    def from_api(cls, data: Fields) -> TokenGrant:
        return cls(
            access_token=data.text("access_token"),
            access_token_expire_in=data.time("access_token_expire_in"),
            refresh_token=data.text("refresh_token"),
            refresh_token_expire_in=data.time("refresh_token_expire_in"),
            open_id=data.optional_text("open_id") or "",
            seller_name=data.optional_text("seller_name") or "",
            seller_base_region=data.optional_text("seller_base_region") or "",
            granted_scopes=list(data.optional_texts("granted_scopes")),
        )

    def __repr__(self) -> str:  # never print tokens
        return f"TokenGrant(access_token_expire_in={self.access_token_expire_in}, seller_name={self.seller_name!r})"


@dataclass(frozen=True, slots=True)
class AuthorizedShop:
    id: str
    name: str
    region: str
    seller_type: str
    cipher: str
    code: str

    @classmethod
    def from_api(cls, shop: Fields) -> AuthorizedShop:
        return cls(shop.id("id"), shop.optional_text("name") or "", shop.optional_text("region") or "",
                   shop.optional_text("seller_type") or "", shop.text("cipher"), shop.optional_text("code") or "")


@dataclass(frozen=True, slots=True)
class Warehouse:
    id: str
    name: str
    type: str
    effect_status: str
    sub_type: str = ""
    is_default: bool = False

    @classmethod
    def from_api(cls, warehouse: Fields) -> Warehouse:
        return cls(warehouse.id("id"), warehouse.optional_text("name") or "", warehouse.optional_text("type") or "",
                   warehouse.optional_text("effect_status") or "", warehouse.optional_text("sub_type") or "",
                   bool(warehouse.optional_flag("is_default")))


@dataclass(frozen=True, slots=True)
class ShopAuth:
    """What a shop-scoped call needs: the shop, its cipher and a current access token."""

    shop_id: str
    cipher: str
    access_token: str

    def __repr__(self) -> str:  # never print the token
        return f"ShopAuth(shop_id={self.shop_id!r})"


@dataclass(frozen=True, slots=True)
class ShippingProvider:
    """A carrier TikTok accepts for one delivery option."""

    id: str
    name: str

    @classmethod
    def from_api(cls, provider: Fields) -> ShippingProvider:
        return cls(provider.id("id"), provider.optional_text("name") or "")

"""Typed results of the TikTok calls shopsync makes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    def from_api(cls, data: dict[str, Any]) -> TokenGrant:
        return cls(
            access_token=str(data["access_token"]),
            access_token_expire_in=int(data["access_token_expire_in"]),
            refresh_token=str(data["refresh_token"]),
            refresh_token_expire_in=int(data["refresh_token_expire_in"]),
            open_id=str(data.get("open_id", "")),
            seller_name=str(data.get("seller_name", "")),
            seller_base_region=str(data.get("seller_base_region", "")),
            granted_scopes=list(data.get("granted_scopes") or []),
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
    def from_api(cls, data: dict[str, Any]) -> AuthorizedShop:
        return cls(str(data["id"]), str(data.get("name", "")), str(data.get("region", "")),
                   str(data.get("seller_type", "")), str(data["cipher"]), str(data.get("code", "")))


@dataclass(frozen=True, slots=True)
class Warehouse:
    id: str
    name: str
    type: str
    effect_status: str
    sub_type: str = ""
    is_default: bool = False

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Warehouse:
        return cls(str(data["id"]), str(data.get("name", "")), str(data.get("type", "")),
                   str(data.get("effect_status", "")), str(data.get("sub_type", "")), bool(data.get("is_default")))


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

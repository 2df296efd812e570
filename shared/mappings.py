"""Seller SKU → OMS product code mappings on the compacted `shopsync.mappings` (key `{shop_id}:{seller_sku}`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


def mapping_key(shop_id: str, seller_sku: str) -> str:
    return f"{shop_id}:{seller_sku}"


def split_mapping_key(key: str) -> tuple[str, str]:
    """`{shop_id}:{seller_sku}` → (shop_id, seller_sku); the seller SKU may itself contain ':'."""
    shop_id, _, seller_sku = key.partition(":")
    return shop_id, seller_sku


@dataclass(frozen=True, slots=True)
class Mapping:
    product_code: str
    updated_at: str
    updated_by: str
    version: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Mapping:
        return cls(str(raw["product_code"]), str(raw.get("updated_at", "")), str(raw.get("updated_by", "")),
                   int(raw.get("version", 1)))

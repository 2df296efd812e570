"""TikTok's product and its SKUs (Get Product, Search Products: API facts §9.1) as typed values.

Read by the rules of `shared.tiktok.fields`. Required: the product's `id` and each SKU's `id`. `status` is the
product status (ACTIVATE, DRAFT, FREEZE, DELETED, ...: never a webhook's audit event, §10.4), None when TikTok
sends none. A SKU's `seller_sku` may be absent or empty (then nothing can map to it).

Not yet returned by `TikTokClient` (its product methods still answer dicts, which store sync's catalog reads):
switching them is the next step of issue #16.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.tiktok.fields import Fields, parse_exactly


@dataclass(frozen=True, slots=True)
class SkuStock:
    """A SKU's stock in one warehouse (Get Product / Search Products: `skus[].inventory[]`)."""

    warehouse_id: str
    quantity: int | None


@dataclass(frozen=True, slots=True)
class Sku:
    id: str
    seller_sku: str | None
    inventory: tuple[SkuStock, ...]

    @property
    def warehouse_ids(self) -> tuple[str, ...]:
        return tuple(stock.warehouse_id for stock in self.inventory)


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    status: str | None
    update_time: int | None
    skus: tuple[Sku, ...]


def parse_product(raw: bytes | Mapping[str, Any]) -> Product:
    """One product object of Get Product or Search Products; raises MalformedPayload naming the field."""
    return parse_exactly(raw, read_product)


def read_product(product: Fields) -> Product:
    return Product(product.id("id"), product.optional_text("status") or None, product.optional_time("update_time"),
                   tuple(Sku(sku.id("id"), sku.optional_text("seller_sku"),
                             tuple(SkuStock(stock.id("warehouse_id"), stock.optional_count("quantity"))
                                   for stock in sku.objects("inventory")))
                         for sku in product.objects("skus")))

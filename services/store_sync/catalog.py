"""The catalog view: which TikTok product/SKU carries a seller SKU in a shop (compacted `tiktok.catalog`,
key `{shop_id}:{seller_sku}`), kept from Search Products on a schedule (walked past TikTok's 10,000-result cap by
`catalog_walk`) and from Get Product on product webhooks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from services.store_sync.catalog_walk import by_seller_skus, walk_catalog
from shared.envelope import CloudEvent, rfc3339, to_headers
from shared.kafka import read_to_end
from shared.logging import get_logger
from shared.mappings import mapping_key, split_mapping_key
from shared.settings import Settings
from shared.stores.tokens import TokenKeeper
from shared.tiktok.client import TikTokClient
from shared.topics import TIKTOK_CATALOG, topic_name

log = get_logger("store_sync.catalog")
GONE_STATUSES = frozenset({"DELETED"})  # FREEZE stays: its results name the status


@dataclass(frozen=True, slots=True)
class CatalogSku:
    product_id: str
    sku_id: str
    product_status: str = "ACTIVATE"
    warehouse_ids: tuple[str, ...] = ()


@dataclass(slots=True)
class CatalogEntry:
    shop_id: str
    seller_sku: str
    skus: list[CatalogSku] = field(default_factory=list)

    @property
    def key(self) -> str:
        return mapping_key(self.shop_id, self.seller_sku)

    def to_json(self) -> bytes:
        return orjson.dumps({"shop_id": self.shop_id, "seller_sku": self.seller_sku,
                             "skus": [asdict(s) for s in self.skus]})

    @classmethod
    def from_json(cls, value: bytes) -> CatalogEntry:
        doc = orjson.loads(value)
        return cls(str(doc["shop_id"]), str(doc["seller_sku"]), [
            CatalogSku(str(s["product_id"]), str(s["sku_id"]), str(s.get("product_status", "ACTIVATE")),
                       tuple(str(w) for w in s.get("warehouse_ids") or ())) for s in doc.get("skus") or []])


class Catalog:
    """`{shop_id}:{seller_sku}` → entry, with a reverse index from (shop, sku id) to the seller SKU."""

    def __init__(self) -> None:
        self.entries: dict[str, CatalogEntry] = {}
        self.by_sku: dict[tuple[str, str], str] = {}

    def get(self, shop_id: str, seller_sku: str) -> CatalogEntry | None:
        return self.entries.get(mapping_key(shop_id, seller_sku))

    def seller_sku_of(self, shop_id: str, sku_id: str) -> str | None:
        return self.by_sku.get((shop_id, sku_id))

    def shop_entries(self, shop_id: str) -> dict[str, CatalogEntry]:
        return {k: e for k, e in self.entries.items() if e.shop_id == shop_id}

    def put(self, key: str, entry: CatalogEntry | None) -> None:
        old = self.entries.pop(key, None)
        if old is not None:
            for sku in old.skus:
                self.by_sku.pop((old.shop_id, sku.sku_id), None)
        if entry is not None:
            self.entries[key] = entry
            for sku in entry.skus:
                self.by_sku[(entry.shop_id, sku.sku_id)] = entry.seller_sku

    def apply_record(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        text = key.decode("utf-8", "replace")
        try:
            self.put(text, CatalogEntry.from_json(value) if value is not None else None)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("catalog_record_unreadable", key=text, error=str(exc))

    async def load(self, settings: Settings) -> Catalog:
        async for record in read_to_end(settings, TIKTOK_CATALOG):
            self.apply_record(record.key, record.value)
        return self


def entries_from_products(shop_id: str, products: list[dict[str, Any]]) -> dict[str, CatalogEntry]:
    """Search Products pages (or Get Product answers) → entries by key, each SKU with its product's status;
    SKUs without a seller SKU are left out (nothing can map to them), as are deleted products."""
    entries: dict[str, CatalogEntry] = {}
    for product in products:
        status = str(product.get("status") or "ACTIVATE")
        if status in GONE_STATUSES:
            continue
        product_id = str(product.get("id") or product.get("product_id"))
        for sku in product.get("skus") or []:
            seller_sku = str(sku.get("seller_sku") or "").strip()
            if not seller_sku:
                continue
            stock = sku.get("inventory") or sku.get("warehouse_inventory") or []
            warehouses = tuple(str(w["warehouse_id"]) for w in stock if w.get("warehouse_id"))
            entry = entries.setdefault(mapping_key(shop_id, seller_sku), CatalogEntry(shop_id, seller_sku))
            entry.skus.append(CatalogSku(product_id, str(sku["id"]), status, warehouses))
    return entries


class CatalogKeeper:
    """Refreshes the catalog from TikTok and publishes what changed; returns the changed keys."""

    def __init__(self, catalog: Catalog, client: TikTokClient, tokens: TokenKeeper, producer: AIOKafkaProducer,
                 settings: Settings) -> None:
        self.catalog = catalog
        self.client = client
        self.tokens = tokens
        self.producer = producer
        self.topic = topic_name(TIKTOK_CATALOG, settings.shopsync_topic_prefix)
        self.refreshed_at: dict[str, float] = {}
        self.partial: dict[str, bool] = {}  # shop → its catalog holds the mapped seller SKUs only
        self._locks: dict[str, asyncio.Lock] = {}

    async def refresh_shop(self, shop_id: str, mapped: Collection[str] = ()) -> set[str]:
        """Full refresh of one shop with Search Products; `mapped` are the shop's mapped seller SKUs (a shop over
        TikTok's 10,000-result cap may be read by those alone: `catalog_walk`)."""
        async with self._locks.setdefault(shop_id, asyncio.Lock()):
            auth = await self.tokens.shop_auth(shop_id)

            async def page(body: dict[str, Any], size: int, token: str) -> tuple[list[dict[str, Any]], str, int]:
                return await self.client.search_products_page(auth, body, page_size=size, page_token=token)

            walk = await walk_catalog(page, sorted(mapped), now=int(time.time()))
            fresh = entries_from_products(shop_id, walk.products)
            changed = await self._publish(fresh, self.catalog.shop_entries(shop_id))
            self.partial[shop_id] = walk.partial
            self.refreshed_at[shop_id] = time.monotonic()
            log.info("catalog_refreshed", shop_id=shop_id, products=len(walk.products), seller_skus=len(fresh),
                     changed=len(changed), strategy=walk.strategy, calls=walk.calls)
            return changed

    async def look_up(self, shop_id: str, seller_skus: Collection[str]) -> set[str]:
        """Read these seller SKUs from TikTok (a partial catalog meeting a new mapping); the changed keys."""
        async with self._locks.setdefault(shop_id, asyncio.Lock()):
            auth = await self.tokens.shop_auth(shop_id)

            async def page(body: dict[str, Any], size: int, token: str) -> tuple[list[dict[str, Any]], str, int]:
                return await self.client.search_products_page(auth, body, page_size=size, page_token=token)

            products, _ = await by_seller_skus(page, sorted(seller_skus))
            wanted = {mapping_key(shop_id, s) for s in seller_skus}
            fresh = {k: e for k, e in entries_from_products(shop_id, products).items() if k in wanted}
            current = {k: e for k, e in self.catalog.shop_entries(shop_id).items() if k in wanted}
            return await self._publish(fresh, current)

    async def refresh_products(self, shop_id: str, product_ids: list[str]) -> set[str]:
        """Re-read some products (after a product webhook) with Get Product: their SKUs, warehouses and the
        status TikTok shows now (a webhook never says the status: API facts §10.4)."""
        async with self._locks.setdefault(shop_id, asyncio.Lock()):
            auth = await self.tokens.shop_auth(shop_id)
            products = [await self.client.get_product(auth, product_id) for product_id in product_ids]
            fresh = entries_from_products(shop_id, products)
            wanted = set(product_ids)
            # entries that held one of these products, with those products' SKUs taken out
            current = {k: e for k, e in self.catalog.shop_entries(shop_id).items()
                       if any(s.product_id in wanted for s in e.skus)}
            merged: dict[str, CatalogEntry] = {}
            for key in set(current) | set(fresh):
                kept = [s for s in (current[key].skus if key in current else []) if s.product_id not in wanted]
                if key not in current and (old := self.catalog.entries.get(key)) is not None:
                    kept = list(old.skus)
                new = kept + (fresh[key].skus if key in fresh else [])
                if new:
                    merged[key] = CatalogEntry(shop_id, split_mapping_key(key)[1], new)
            touched = {k: self.catalog.entries[k] for k in merged if k in self.catalog.entries} | current
            return await self._publish(merged, touched)

    async def _publish(self, fresh: dict[str, CatalogEntry], current: dict[str, CatalogEntry]) -> set[str]:
        changed = {k for k, e in fresh.items() if current.get(k) is None or current[k].skus != e.skus}
        gone = set(current) - set(fresh)
        futures = []
        now = time.time()
        for key in changed:
            value = fresh[key].to_json()
            event = CloudEvent(id=f"catalog:{key}:{time.time_ns()}", source="shopsync/store_sync",
                               type="shopsync.catalog.sku", data=value, time=rfc3339(now), subject=key)
            futures.append(await self.producer.send(self.topic, value, key=key.encode(), headers=to_headers(event)))
        for key in gone:
            futures.append(await self.producer.send(self.topic, None, key=key.encode()))
        for future in futures:
            await future
        for key in changed:
            self.catalog.put(key, fresh[key])
        for key in gone:
            self.catalog.put(key, None)
        return changed | gone

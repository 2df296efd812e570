"""Inventory sync: the OMS's latest quantity per product, coalesced, pushed to every mapped TikTok SKU.

Quantities wait in `pending` for the coalescing window (latest wins), then one flush pushes them: per store one
Inventory Search for up to 100 products (current stock of every warehouse), then one Update Inventory per TikTok
product holding all its SKUs that change. Callers register what to do once their records are pushed (commit
offsets) with `after_flush`; a flush interrupted by shutdown runs none of them, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from collections.abc import Mapping as MappingType
from dataclasses import dataclass, field, replace
from typing import Any

from aiokafka.errors import KafkaError

from services.store_sync.catalog import Catalog, CatalogKeeper
from services.store_sync.inventory_plan import (
    Target,
    find_targets,
    linked_warehouses,
    plan_update,
    result_for,
    stock_from_search,
)
from services.store_sync.inventory_rules import (
    STATUS_NOT_ALLOWED,
    STATUS_NOT_ALLOWED_CODE,
    ZERO_NOT_ALLOWED,
    ZERO_REFUSED_CODES,
    rejection_reason,
    status_not_allowed_detail,
    zero_not_allowed_detail,
)
from services.store_sync.records import StockLevel
from services.store_sync.results import ResultWriter, SyncResult
from services.store_sync.retry import UNAVAILABLE, Interrupted, until_kafka_accepts
from shared.logging import get_logger
from shared.mappings import Mapping, mapping_key
from shared.settings import Settings
from shared.stores.table import StoreTable
from shared.stores.tokens import StoreUnavailable, TokenKeeper
from shared.tiktok.client import TikTokClient
from shared.tiktok.errors import TikTokError
from shared.tiktok.models import ShopAuth
from shared.tiktok.retry import counting_calls

MappingView = MappingType[str, Mapping]  # MappingTable.mappings: "{shop}:{seller_sku}" → Mapping, read only
log = get_logger("store_sync.inventory")
PRODUCT_CONCURRENCY = 8  # calls in flight per store; the client's limiter paces them at the QPS limit


@dataclass(slots=True)
class Pending:
    cause: str
    only: set[tuple[str, str]] | None  # (shop, seller SKU) pairs to re-check; None = every mapped pair


@dataclass(slots=True)
class FlushStats:
    update_calls: int = 0
    search_calls: int = 0
    results: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class InventorySync:
    def __init__(self, settings: Settings, table: StoreTable, mappings: MappingView, catalog: Catalog,
                 keeper: CatalogKeeper, tokens: TokenKeeper, client: TikTokClient, writer: ResultWriter,
                 stop: asyncio.Event, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.table = table
        self.mappings = mappings  # MappingTable.mappings: "{shop}:{seller_sku}" → Mapping
        self.catalog = catalog
        self.keeper = keeper
        self.tokens = tokens
        self.client = client
        self.writer = writer
        self.stop = stop
        self.clock = clock
        self.levels: dict[str, StockLevel] = {}
        self.pending: dict[str, Pending] = {}
        self.stats = FlushStats()
        self.refused_statuses: dict[str, set[str]] = defaultdict(set)  # shop → statuses TikTok answered 12052901
        self._due: float | None = None
        self._after: list[Callable[[], Awaitable[None]]] = []

    # ---- input ---------------------------------------------------------------------------------------------
    def restore(self, level: StockLevel) -> None:
        """A quantity read back at start-up (already pushed, or redelivered by the consumer later)."""
        current = self.levels.get(level.product_code)
        if current is None or level.as_of_ts >= current.as_of_ts:
            self.levels[level.product_code] = level

    def offer(self, level: StockLevel) -> bool:
        """An OMS quantity; False (ignored) when older than the last one for its product."""
        current = self.levels.get(level.product_code)
        if current is not None and level.as_of_ts < current.as_of_ts:
            return False
        self.levels[level.product_code] = level
        self._schedule(level.product_code, "oms_update", None)
        return True

    def recheck(self, shop_id: str, seller_sku: str, cause: str) -> bool:
        """Push the OMS's last quantity again to one (store, seller SKU), e.g. after a webhook 27."""
        mapping = self.mappings.get(mapping_key(shop_id, seller_sku))
        code = mapping.product_code if mapping is not None else None
        if code is None or code not in self.levels:
            return False
        self._schedule(code, cause, {(shop_id, seller_sku)})
        return True

    def after_flush(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._after.append(callback)
        if self._due is None:
            self._due = self.clock() + self.settings.shopsync_inventory_coalesce_s

    def _schedule(self, code: str, cause: str, only: set[tuple[str, str]] | None) -> None:
        current = self.pending.get(code)
        if current is None:
            self.pending[code] = Pending(cause, None if only is None else set(only))
        elif current.only is not None:
            current.only = None if only is None else current.only | only
            current.cause = cause if only is None else current.cause
        if self._due is None:
            self._due = self.clock() + self.settings.shopsync_inventory_coalesce_s

    # ---- flushing ------------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Flush whenever the coalescing window of the oldest pending quantity has passed, until stopped."""
        try:
            while not self.stop.is_set():
                if self._due is not None and self.clock() >= self._due:
                    await self.flush()
                else:
                    await asyncio.sleep(0.05)
        except Interrupted:
            log.info("inventory_flush_interrupted", pending=len(self.pending))

    async def flush(self) -> None:
        batch, self.pending = self.pending, {}
        after, self._after = self._after, []
        self._due = None
        by_code: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for key, mapping in list(self.mappings.items()):
            shop_id, _, seller_sku = key.partition(":")
            by_code[mapping.product_code].append((shop_id, seller_sku))
        shops = {shop for code in batch for shop, _ in by_code.get(code, ())}
        await self._ensure_catalogs(shops)
        await self._look_up_missing([p for code in batch for p in by_code.get(code, ())])
        results: list[SyncResult] = []
        targets: dict[str, list[Target]] = defaultdict(list)
        for code, pending in batch.items():
            level = self.levels[code]
            found, skipped = find_targets(code, level.available, pending.cause, by_code.get(code, ()),
                                          self.table.stores, self.catalog, pending.only, self.refused_statuses)
            results += skipped
            for target in found:
                targets[target.shop_id].append(target)
        pushed = await asyncio.gather(*(self._push_shop(shop, ts) for shop, ts in targets.items()))
        results += [r for rs in pushed for r in rs]
        await until_kafka_accepts(lambda: self.writer.publish(results), stop=self.stop, what="results")
        for result in results:
            self.stats.results[f"{result.status}:{result.reason or ''}"] += 1
        for callback in after:
            await callback()
        if batch:
            log.info("inventory_flushed", products=len(batch), results=len(results),
                     update_calls=self.stats.update_calls, search_calls=self.stats.search_calls)

    async def _ensure_catalogs(self, shops: set[str]) -> None:
        for shop_id in shops:
            store = self.table.stores.get(shop_id)
            if shop_id in self.keeper.refreshed_at or store is None or not store.is_active \
                    or not store.auto_sync_inventory:
                continue
            try:
                await self.keeper.refresh_shop(shop_id, self.mapped_seller_skus(shop_id))
            except (TikTokError, StoreUnavailable, KafkaError) as exc:
                log.error("catalog_refresh_failed", shop_id=shop_id, error=str(exc))

    def mapped_seller_skus(self, shop_id: str) -> list[str]:
        """The shop's seller SKUs that have a mapping (what a catalog over TikTok's search cap is read by)."""
        prefix = f"{shop_id}:"
        return [key[len(prefix):] for key in list(self.mappings) if key.startswith(prefix)]

    async def _look_up_missing(self, pairs: list[tuple[str, str]]) -> None:
        """Mapped seller SKUs a partial catalog (a shop over the search cap) has not read yet: read them now."""
        missing: dict[str, set[str]] = defaultdict(set)
        for shop_id, seller_sku in pairs:
            if self.keeper.partial.get(shop_id) and self.catalog.get(shop_id, seller_sku) is None:
                missing[shop_id].add(seller_sku)
        for shop_id, skus in missing.items():
            try:
                await self.keeper.look_up(shop_id, skus)
            except (TikTokError, StoreUnavailable, KafkaError) as exc:
                log.error("catalog_lookup_failed", shop_id=shop_id, error=str(exc))

    async def _push_shop(self, shop_id: str, targets: list[Target]) -> list[SyncResult]:
        store = self.table.stores[shop_id]
        try:
            auth = await self.tokens.shop_auth(shop_id)
            product_ids = list(dict.fromkeys(t.product_id for t in targets))
            self.stats.search_calls += -(-len(product_ids) // 100)
            with counting_calls() as calls:
                items = await self.client.search_inventory(auth, product_ids)
        except StoreUnavailable:
            return [result_for(t, "skipped", "inventory:store_not_linked", f"shop {shop_id} is not linked")
                    for t in targets]
        except UNAVAILABLE as exc:  # the client's retries are spent
            return [result_for(t, "failed", "inventory:tiktok_unavailable", str(exc), exc.code,
                               attempts=calls.calls) for t in targets]
        except TikTokError as exc:
            return [result_for(t, "failed", f"inventory:rejected:{exc.code}", exc.message, exc.code) for t in targets]
        stock = stock_from_search(items)
        by_product: dict[str, list[Target]] = defaultdict(list)
        for target in targets:
            by_product[target.product_id].append(target)
        linked = linked_warehouses(store)
        limit = asyncio.Semaphore(PRODUCT_CONCURRENCY)

        async def one(product_id: str, group: list[Target]) -> list[SyncResult]:
            async with limit:
                # the newest quantity at call time: one arriving during a long flush rides along, and the next
                # flush then finds TikTok already showing it (no second call)
                group = [replace(t, oms_available=self.levels[t.product_code].available) for t in group]
                body, changing, results = plan_update(group, stock, linked, store.nickname, store.warehouse_names)
                if not body:
                    return results
                return results + await self._update(auth, product_id, body, changing)

        done = await asyncio.gather(*(one(pid, group) for pid, group in by_product.items()))
        return [r for rs in done for r in rs]

    async def _update(self, auth: ShopAuth, product_id: str, body: list[dict[str, Any]],
                      changing: list[tuple[Target, str, int]]) -> list[SyncResult]:
        """One Update Inventory call and its per-SKU outcomes. A whole-call refusal of a 0 (12052055 /
        12019024) fails the SKUs holding a 0 (`inventory:zero_not_allowed`, never retried) and sends the others
        once more without them."""
        try:
            self.stats.update_calls += 1
            with counting_calls() as calls:
                errors = await self.client.update_inventory(auth, product_id, body)
        except UNAVAILABLE as exc:  # the client's retries are spent
            return [result_for(t, "failed", "inventory:tiktok_unavailable", str(exc), exc.code,
                               attempts=calls.calls, warehouse_id=w) for t, w, _ in changing]
        except TikTokError as exc:
            zero = {str(s["id"]) for s in body if any(i["quantity"] == 0 for i in s["inventory"])}
            if exc.code in ZERO_REFUSED_CODES and zero:
                rest = [s for s in body if str(s["id"]) not in zero]
                refused = [c for c in changing if c[0].sku_id in zero]
                results = [self._refusal(t, w, before, exc.code, exc.message, calls.calls)
                           for t, w, before in refused]
                if rest:
                    results += await self._update(auth, product_id, rest,
                                                  [c for c in changing if c[0].sku_id not in zero])
                return results
            if exc.code == STATUS_NOT_ALLOWED_CODE:
                changing = await self._with_current_status(auth, changing)
            return [self._refusal(t, w, before, exc.code, exc.message, calls.calls) for t, w, before in changing]
        attempts = calls.calls
        failed = {str((e.get("detail") or {}).get("sku_id")): e for e in errors}
        results = []
        for target, warehouse, before in changing:
            error = failed.get(target.sku_id)
            if error is None:
                results.append(result_for(target, "applied", attempts=attempts, warehouse_id=warehouse,
                                          tiktok_quantity_before=before, tiktok_quantity=target.quantity,
                                          changed=True))
                continue
            extra = (error.get("detail") or {}).get("extra_errors") or []
            code = int(extra[0].get("code") or error.get("code") or 0) if extra else int(error.get("code") or 0)
            message = "; ".join(str(e.get("message")) for e in extra) or str(error.get("message"))
            results.append(self._refusal(target, warehouse, before, code, message, attempts))
        return results

    def _refusal(self, target: Target, warehouse: str, before: int, code: int | None, message: str,
                 attempts: int) -> SyncResult:
        """A `failed` result for one SKU TikTok refused, with the reason and fix its code calls for."""
        reason = rejection_reason(code, target.quantity)
        if reason == ZERO_NOT_ALLOWED:
            message = zero_not_allowed_detail(target.seller_sku, target.shop_id, target.buffer, code)
        elif reason == STATUS_NOT_ALLOWED:
            if target.product_status != "ACTIVATE":
                self.refused_statuses[target.shop_id].add(target.product_status)
            message = status_not_allowed_detail(target.seller_sku, target.product_id, target.product_status)
        return result_for(target, "failed", reason, message, code, attempts=attempts, warehouse_id=warehouse,
                          tiktok_quantity=before)

    async def _with_current_status(self, auth: ShopAuth, changing: list[tuple[Target, str, int]]
                                   ) -> list[tuple[Target, str, int]]:
        """The targets with their product's status as Search Products shows it now (the catalog may be stale)."""
        skus = list(dict.fromkeys(t.seller_sku for t, _, _ in changing))[:10]
        try:
            products = [p async for p in self.client.search_products(auth, seller_skus=skus)]
        except TikTokError:
            return changing
        status = {str(p.get("id")): str(p.get("status") or "") for p in products}
        return [(replace(t, product_status=status.get(t.product_id) or t.product_status), w, b)
                for t, w, b in changing]

"""Which TikTok SKUs an OMS quantity goes to, and the Update Inventory body for one product (pure).

A product code fans out to every (store with inventory sync on, seller SKU) the mapping table maps to it, and
each seller SKU to the TikTok SKUs the catalog lists for it (products in a status TikTok refuses updates for are
skipped, see `inventory_rules`). TikTok wants every warehouse of a SKU in the call: the one linked warehouse gets
the new quantity (at most 99,999), the others go back with their current quantities.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from services.store_sync.catalog import Catalog
from services.store_sync.inventory_rules import (
    STATUS_NOT_ALLOWED,
    clamp_note,
    clamp_quantity,
    status_allows_update,
    status_not_allowed_detail,
)
from services.store_sync.results import Status, SyncResult
from shared.stores.model import StoreRecord

Stock = dict[str, dict[str, int]]  # sku id → warehouse id → available quantity


@dataclass(frozen=True, slots=True)
class Target:
    """One TikTok SKU of one store that should show `quantity`."""

    product_code: str
    shop_id: str
    seller_sku: str
    product_id: str
    sku_id: str
    oms_available: int
    buffer: int
    cause: str
    product_status: str = "ACTIVATE"

    @property
    def wanted(self) -> int:
        return max(self.oms_available - self.buffer, 0)

    @property
    def quantity(self) -> int:
        """What TikTok should show: max(available - buffer, 0), at most 99,999."""
        return clamp_quantity(self.wanted)[0]

    @property
    def clamped(self) -> bool:
        return clamp_quantity(self.wanted)[1]

    def ids(self) -> dict[str, Any]:
        return {"product_code": self.product_code, "shop_id": self.shop_id, "seller_sku": self.seller_sku,
                "product_id": self.product_id, "sku_id": self.sku_id, "oms_available": self.oms_available,
                "inventory_buffer": self.buffer, "quantity": self.quantity, "clamped": self.clamped,
                "product_status": self.product_status, "cause": self.cause}


def result_for(target: Target, status: Status, reason: str | None = None, detail: str | None = None,
               code: int | None = None, **more: Any) -> SyncResult:
    if target.clamped:
        detail = f"{detail}; {clamp_note(target.wanted)}" if detail else clamp_note(target.wanted)
    return SyncResult("inventory", target.product_code, status, reason, detail, code,
                      ids=target.ids() | more)


def find_targets(product_code: str, available: int, cause: str, mapped: Iterable[tuple[str, str]],
                 stores: dict[str, StoreRecord], catalog: Catalog, only: set[tuple[str, str]] | None = None,
                 refused: dict[str, set[str]] | None = None) -> tuple[list[Target], list[SyncResult]]:
    """Targets for one product's quantity, and the results for the (store, seller SKU) pairs or TikTok SKUs that
    get none; `refused` holds, per shop, the product statuses TikTok answered 12052901 for."""
    pairs = sorted(p for p in mapped if only is None or p in only)
    if not pairs and only is None:
        return [], [SyncResult("inventory", product_code, "skipped", "inventory:unmapped_product",
                               f"no store maps a seller SKU to product {product_code}: run `shopsync mappings set "
                               f"SHOP SELLER_SKU {product_code}`", ids={"product_code": product_code,
                                                                       "oms_available": available, "cause": cause})]
    targets: list[Target] = []
    results: list[SyncResult] = []
    for shop_id, seller_sku in pairs:
        store = stores.get(shop_id)
        base = {"product_code": product_code, "shop_id": shop_id, "seller_sku": seller_sku,
                "oms_available": available, "cause": cause}
        if store is None or not store.is_active:
            results.append(SyncResult("inventory", product_code, "skipped", "inventory:store_not_linked",
                                      f"shop {shop_id} is not linked", ids=base))
            continue
        if not store.auto_sync_inventory:
            results.append(SyncResult("inventory", product_code, "skipped", "inventory:store_sync_off",
                                      f"inventory sync is off for {store.nickname}: run `shopsync stores set "
                                      f"{shop_id} --auto-sync-inventory on`", ids=base))
            continue
        entry = catalog.get(shop_id, seller_sku)
        if entry is None or not entry.skus:
            results.append(SyncResult("inventory", product_code, "skipped", "inventory:seller_sku_not_on_tiktok",
                                      f"no TikTok SKU of {store.nickname} has seller SKU {seller_sku!r}: set it on "
                                      "the product in TikTok Seller Center", ids=base))
            continue
        for sku in entry.skus:
            target = Target(product_code, shop_id, seller_sku, sku.product_id, sku.sku_id, available,
                            max(store.inventory_buffer, 0), cause, sku.product_status)
            if status_allows_update(sku.product_status, (refused or {}).get(shop_id, ())):
                targets.append(target)
            else:
                results.append(result_for(target, "skipped", STATUS_NOT_ALLOWED, status_not_allowed_detail(
                    seller_sku, sku.product_id, sku.product_status)))
    return targets, results


def linked_warehouses(store: StoreRecord) -> set[str] | None:
    """The warehouse ids the store was linked with; None when linked with a blank name (all warehouses)."""
    return set(store.warehouse_ids) if store.warehouse_ids else None


def plan_update(targets: list[Target], stock: Stock, linked: set[str] | None, store_name: str,
                linked_names: list[str]) -> tuple[list[dict[str, Any]], list[tuple[Target, str, int]],
                                                  list[SyncResult]]:
    """For targets of ONE product in ONE store: (Update Inventory `skus` body, [(target, warehouse, before)]
    that the body changes, results decided without a call)."""
    body: list[dict[str, Any]] = []
    changing: list[tuple[Target, str, int]] = []
    results: list[SyncResult] = []
    for target in targets:
        warehouses = stock.get(target.sku_id)
        if warehouses is None:
            results.append(result_for(target, "skipped", "inventory:seller_sku_not_on_tiktok",
                                      f"TikTok no longer lists SKU {target.sku_id} (seller SKU {target.seller_sku})"))
            continue
        hits = sorted(w for w in warehouses if linked is None or w in linked)
        where = ", ".join(sorted(warehouses)) or "none"
        if not hits:
            results.append(result_for(target, "skipped", "inventory:no_linked_warehouse",
                                      f"SKU {target.seller_sku} is stocked on TikTok in warehouses {where}, none of "
                                      f"which {store_name} is linked with ({', '.join(linked_names) or 'none'}): "
                                      "link the store with the name of the warehouse that holds it",
                                      warehouses=sorted(warehouses)))
            continue
        if len(hits) > 1:
            results.append(result_for(target, "skipped", "inventory:ambiguous_warehouse",
                                      f"SKU {target.seller_sku} is stocked in {len(hits)} warehouses {store_name} is "
                                      f"linked with ({', '.join(hits)}); link the store with the name of the one "
                                      "warehouse this OMS ships from", warehouses=hits))
            continue
        chosen = hits[0]
        before = warehouses[chosen]
        if before == target.quantity:
            results.append(result_for(target, "applied", detail="TikTok already shows this quantity",
                                      warehouse_id=chosen, tiktok_quantity=before, changed=False))
            continue
        body.append({"id": target.sku_id, "inventory": [
            {"warehouse_id": w, "quantity": target.quantity if w == chosen else q}
            for w, q in sorted(warehouses.items())]})
        changing.append((target, chosen, before))
    return body, changing, results


def stock_from_search(items: list[dict[str, Any]]) -> Stock:
    """Inventory Search items → sku id → warehouse id → available quantity."""
    stock: Stock = {}
    for item in items:
        for sku in item.get("skus") or []:
            stock[str(sku["id"])] = {str(w["warehouse_id"]): int(w.get("available_quantity") or 0)
                                     for w in sku.get("warehouse_inventory") or []}
    return stock

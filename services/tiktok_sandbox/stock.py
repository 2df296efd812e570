"""Products and stock over the World (§9): Get Product, Search Products, Inventory Search, Update Inventory, the
product and low-stock webhooks' payloads and the control API's direct stock edits. Pure functions raising
`ApiError` like TikTok.

Codes: 36009004 bad page size / token / body; 12019027 more than 10 seller SKUs; 12052180 a search whose pages
would go past the 10,000th result (DOCS v202502: narrow the filter); 12019120 more than 100 product ids, 12019015
more than 600 SKU ids; 12052556 product (or,
per SKU, SKU) not found; 12052050 more than 100 SKUs; 12052901 product status other than ACTIVATE (DOCS; TikTok's
Node SDK would also allow other statuses but FREEZE / DELETED); 12052055 quantity not 0..99,999, or 0 when the
`refuse_zero_quantity` switch is on (current DOCS say 1..99,999, 2024 docs allow 0: unresolved, so both are
served); per SKU (with `code: 0`) 12052990 "Check failed" wrapping 12052097 warehouse not in the shop and 12052037
warehouse list not exactly the SKU's.

Inventory Search given both `product_ids` and `sku_ids` uses the `sku_ids` (DOCS). Get Product answers 12052556
for a product the shop does not have (assumed: no source gives its not-found code).

Webhook 5's `data.status` is an audit event, not the product status (DOCS, facts §10.4): PRODUCT_AUDIT_FAILURE when
the product goes to FAILED, PRODUCT_FIRST_PASS_REVIEW when a product created in review (DRAFT / PENDING / FAILED)
first becomes ACTIVATE (assumed from the name), PRODUCT_STATUS_CHANGED for any other status change.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from services.tiktok_sandbox.api import ApiError
from services.tiktok_sandbox.world import PRODUCT_STATUSES, SEEDED_STOCK, Product, Shop, Sku, World, WorldError

MAX_SELLER_SKUS = 10
MAX_PRODUCT_IDS = 100
MAX_SKU_IDS = 600
MAX_SKUS_PER_UPDATE = 100
MAX_QUANTITY = 99_999
MAX_SEARCH_RESULTS = 10_000
UPDATABLE_STATUS = "ACTIVATE"
TIME_FILTERS = ("update_time_ge", "update_time_le", "create_time_ge", "create_time_le")
CURRENCY = {"US": "USD", "GB": "GBP", "UK": "GBP", "MY": "MYR", "JP": "JPY"}

INVENTORY_STATUS_CHANGE = 27
FIRST_PASS_REVIEW = "PRODUCT_FIRST_PASS_REVIEW"
STATUS_CHANGED = "PRODUCT_STATUS_CHANGED"
AUDIT_FAILURE = "PRODUCT_AUDIT_FAILURE"


# ---- Get Product -------------------------------------------------------------------------------------------
def get_product(world: World, shop: Shop, product_id: str) -> dict[str, Any]:
    """`GET /product/202309/products/{product_id}`: the product as Search Products shows it, plus the (empty)
    audit failure reasons."""
    product = world.product(product_id, shop.id)
    if product is None:
        raise ApiError(12052556, f"product {product_id} not found")
    return product_view(product, shop) | {"audit_failed_reasons": []}


# ---- Search Products ---------------------------------------------------------------------------------------
def search_products(world: World, shop: Shop, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    try:
        page_size = int(query.get("page_size", ""))
        start = int(query.get("page_token") or 0)
    except ValueError:
        raise ApiError(36009004, "page_size (1-100) is required and page_token must come from a response") from None
    if not 1 <= page_size <= 100 or start < 0:
        raise ApiError(36009004, "page_size must be 1-100")
    seller_skus = body.get("seller_skus")
    if seller_skus is not None:
        if not isinstance(seller_skus, list) or not all(isinstance(s, str) for s in seller_skus):
            raise ApiError(36009004, "seller_skus must be a list of strings")
        if len(seller_skus) > MAX_SELLER_SKUS:
            raise ApiError(12019027, f"seller_skus accepts at most {MAX_SELLER_SKUS} values")
    for name in TIME_FILTERS:
        if body.get(name) is not None and (not isinstance(body[name], int) or isinstance(body[name], bool)):
            raise ApiError(36009004, f"{name} must be a Unix time in seconds")
    if start + page_size > MAX_SEARCH_RESULTS:
        raise ApiError(12052180, f"Search Products returns at most {MAX_SEARCH_RESULTS} results: narrow the "
                                 "filter (seller_skus, update_time_ge / update_time_le)")
    matches = [p for p in world.products[shop.id] if _product_matches(p, body)]
    page = matches[start:start + page_size]
    return {"total_count": len(matches),
            "next_page_token": str(start + page_size) if start + page_size < len(matches) else "",
            "products": [product_view(p, shop) for p in page]}


def _product_matches(product: Product, f: dict[str, Any]) -> bool:
    """Every given filter holds (`status` defaults to ALL, as TikTok's does)."""
    skus, status = f.get("seller_skus"), f.get("status")
    if skus is not None and not any(k.seller_sku in skus for k in product.skus):
        return False
    if status is not None and status not in ("ALL", product.status):
        return False
    for name, value in (("update_time", product.update_time), ("create_time", product.create_time)):
        low, high = f.get(f"{name}_ge"), f.get(f"{name}_le")
        if (low is not None and value < low) or (high is not None and value > high):
            return False
    return True


def product_view(product: Product, shop: Shop) -> dict[str, Any]:
    """A product as Search Products shows it."""
    currency = CURRENCY.get(shop.region, "USD")
    return {"id": product.id, "title": product.title, "status": product.status,
            "create_time": product.create_time, "update_time": product.update_time,
            "skus": [{"id": k.id, "seller_sku": k.seller_sku, "price": {"currency": currency, "sale_price": k.price},
                      "inventory": [{"warehouse_id": w, "quantity": q} for w, q in k.inventory.items()]}
                     for k in product.skus]}


# ---- Inventory Search --------------------------------------------------------------------------------------
def search_inventory(world: World, shop: Shop, body: dict[str, Any]) -> dict[str, Any]:
    """By `sku_ids` when given (DOCS: they win over `product_ids`), else by `product_ids`."""
    product_ids, sku_ids = body.get("product_ids"), body.get("sku_ids")
    for name, ids, limit, code in (("product_ids", product_ids, MAX_PRODUCT_IDS, 12019120),
                                   ("sku_ids", sku_ids, MAX_SKU_IDS, 12019015)):
        if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
            raise ApiError(36009004, f"{name} must be a list of strings")
        if ids is not None and len(ids) > limit:
            raise ApiError(code, f"{name} accepts at most {limit} ids")
    if not product_ids and not sku_ids:
        raise ApiError(36009004, "product_ids or sku_ids is required")
    if sku_ids:
        products = list(world.products[shop.id])
    else:
        products = [p for i in dict.fromkeys(product_ids or []) if (p := world.product(i, shop.id)) is not None]
    wanted = set(sku_ids) if sku_ids else None
    inventory = []
    for product in products:
        skus = [k for k in product.skus if wanted is None or k.id in wanted]
        if skus:
            inventory.append({"product_id": product.id, "skus": [_sku_inventory(k) for k in skus]})
    return {"inventory": inventory}


def _sku_inventory(sku: Sku) -> dict[str, Any]:
    return {"id": sku.id, "seller_sku": sku.seller_sku, "total_available_quantity": sku.total,
            "total_committed_quantity": 0,
            "warehouse_inventory": [{"warehouse_id": w, "available_quantity": q, "committed_quantity": 0}
                                    for w, q in sku.inventory.items()]}


# ---- Update Inventory --------------------------------------------------------------------------------------
def update_inventory(world: World, shop: Shop, product_id: str, body: dict[str, Any], *,
                     refuse_zero: bool = False) -> tuple[dict[str, Any], list[tuple[Product, Sku]]]:
    """Applies every SKU that passes its checks; returns the response `data` (per-SKU `errors` when some
    failed) and the (product, SKU) pairs applied. `refuse_zero`: quantities must be 1..99,999 (current docs)."""
    product = world.product(product_id, shop.id)
    if product is None:
        raise ApiError(12052556, f"product {product_id} not found")
    skus = body.get("skus")
    if not isinstance(skus, list) or not skus or not all(_sku_shape(s) for s in skus):
        raise ApiError(36009004, "skus must be a non-empty list of {id, inventory: [{warehouse_id, quantity}]}")
    if len(skus) > MAX_SKUS_PER_UPDATE:
        raise ApiError(12052050, f"at most {MAX_SKUS_PER_UPDATE} SKUs per product")
    if product.status != UPDATABLE_STATUS:
        raise ApiError(12052901, f"product status {product.status} does not allow inventory updates")
    for item in (i for s in skus for i in s["inventory"]):
        if not valid_quantity(item.get("quantity")):
            raise ApiError(12052055, f"quantity must be an integer from 0 to {MAX_QUANTITY}")
        if refuse_zero and item["quantity"] == 0:
            raise ApiError(12052055, f"quantity must be an integer from 1 to {MAX_QUANTITY}")
    shop_warehouses = {w["id"] for w in world.warehouses[shop.id]}
    own = {k.id: k for k in product.skus}
    errors, applied = [], []
    for spec in skus:
        sku = own.get(spec["id"])
        extra = (_warehouse_errors(sku, spec["inventory"], shop_warehouses) if sku is not None
                 else [{"warehouse_id": "", "code": 12052556, "message": "The SKU does not belong to this product"}])
        if extra:
            errors.append({"code": 12052990, "message": "Check failed",
                           "detail": {"sku_id": spec["id"], "extra_errors": extra}})
            continue
        assert sku is not None
        sku.inventory = {i["warehouse_id"]: int(i["quantity"]) for i in spec["inventory"]}
        applied.append((product, sku))
    if applied:
        world.touch_product(product)
        world.inventory_updates.append({
            "shop_id": shop.id, "product_id": product.id, "at": world.clock(),
            "skus": [{"id": k.id, "inventory": [{"warehouse_id": w, "quantity": q} for w, q in k.inventory.items()]}
                     for _, k in applied]})
    return ({"errors": errors} if errors else {}), applied


def _sku_shape(spec: object) -> bool:
    return (isinstance(spec, dict) and isinstance(spec.get("id"), str) and isinstance(spec.get("inventory"), list)
            and all(isinstance(i, dict) and isinstance(i.get("warehouse_id"), str) for i in spec["inventory"]))


def _warehouse_errors(sku: Sku, inventory: list[dict[str, Any]], shop_warehouses: set[str]) -> list[dict[str, Any]]:
    """The list must name exactly the SKU's warehouses, each once."""
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in inventory:
        wid = item["warehouse_id"]
        if wid not in shop_warehouses:
            errors.append({"warehouse_id": wid, "code": 12052097, "message": "The warehouse does not exist"})
        elif wid not in sku.inventory or wid in seen:
            errors.append({"warehouse_id": wid, "code": 12052037,
                           "message": "The warehouse is not assigned to this SKU or is listed twice"})
        seen.add(wid)
    for wid in sku.inventory:
        if wid not in seen:
            errors.append({"warehouse_id": wid, "code": 12052037,
                           "message": "Every warehouse assigned to the SKU must be listed"})
    return errors


def valid_quantity(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_QUANTITY


# ---- webhook 27 and control --------------------------------------------------------------------------------
def inventory_alert(product: Product, sku: Sku, threshold: int) -> dict[str, Any]:
    """The INVENTORY_STATUS_CHANGE (27) payload for a SKU's current stock."""
    total = sku.total
    status = "OUT_OF_STOCK" if total == 0 else "LOW_STOCK" if total <= threshold else "SUFFICIENT_STOCK"
    return {"product_id": product.id, "sku_id": sku.id,
            "trigger_reason": {"alert_type": "REALTIME", "low_stock_threshold": threshold},
            "current_inventory_status": status,
            "inventory_distribution": {"total_quantity": total, "available_quantity": total,
                                       "creator_reserved_quantity": 0, "campaign_reserved_quantity": 0,
                                       "committed_quantity": 0},
            "update_time": product.update_time}


def set_stock(world: World, shop_id: str, sku_id: str, warehouse_id: str, quantity: object) -> tuple[Product, Sku]:
    """The seller edits one warehouse's stock on TikTok (assigning the warehouse if needed)."""
    shop = world.shop(shop_id)
    found = world.find_sku(shop.id, sku_id)
    if found is None:
        raise WorldError(f"unknown sku_id {sku_id!r} in shop {shop.id}")
    if warehouse_id not in {w["id"] for w in world.sales_warehouses(shop.id)}:
        raise WorldError(f"warehouse {warehouse_id!r} is not a sales warehouse of shop {shop.id}")
    if not valid_quantity(quantity):
        raise WorldError(f"quantity must be an integer from 0 to {MAX_QUANTITY}")
    sku, product = found
    sku.inventory[warehouse_id] = int(quantity)
    world.touch_product(product)
    return product, sku


def inventory_row(product: Product, sku: Sku) -> dict[str, Any]:
    """One SKU as the control API lists it."""
    return {"product_id": product.id, "title": product.title, "status": product.status, "sku_id": sku.id,
            "seller_sku": sku.seller_sku, "inventory": dict(sku.inventory)}


def create_product(world: World, doc: dict[str, Any]) -> Product:
    """A product the seller lists on TikTok (control API); SKUs default to 100 in the first sales warehouse."""
    shop = world.shop(doc.get("shop_id"))
    specs = doc.get("skus")
    if not isinstance(specs, list) or not specs or not all(isinstance(s, dict) for s in specs):
        raise WorldError("skus must be a non-empty list of {seller_sku, price?, inventory?}")
    sales = [w["id"] for w in world.sales_warehouses(shop.id)]
    skus = []
    for spec in specs:
        inventory = spec.get("inventory", {sales[0]: SEEDED_STOCK})
        if not isinstance(inventory, dict):
            raise WorldError("inventory must map warehouse ids to quantities")
        for wid, qty in inventory.items():
            if wid not in sales:
                raise WorldError(f"warehouse {wid!r} is not a sales warehouse of shop {shop.id}")
            if not valid_quantity(qty):
                raise WorldError(f"quantity must be an integer from 0 to {MAX_QUANTITY}")
        skus.append((str(spec.get("seller_sku", "")), str(spec.get("price", "9.99")), inventory))
    return world.add_product(shop.id, str(doc.get("title") or "Sandbox product"), str(doc.get("status", "ACTIVATE")),
                             skus)


def edit_product(world: World, product: Product, doc: dict[str, Any]) -> tuple[str | None, bool]:
    """Status and/or seller SKU changes (control API); returns (webhook 5's audit event when the status changed,
    whether seller SKUs changed)."""
    status, specs = doc.get("status"), doc.get("skus")
    if status is not None and status not in PRODUCT_STATUSES:
        raise WorldError(f"unknown product status {status!r}; one of {', '.join(sorted(PRODUCT_STATUSES))}")
    if specs is not None and (not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs)):
        raise WorldError("skus must be a list of {sku_id, seller_sku}")
    own = {k.id: k for k in product.skus}
    renames = {}
    for spec in specs or []:
        if spec.get("sku_id") not in own:
            raise WorldError(f"sku {spec.get('sku_id')!r} is not a SKU of product {product.id}")
        if "seller_sku" in spec and own[spec["sku_id"]].seller_sku != str(spec["seller_sku"]):
            renames[spec["sku_id"]] = str(spec["seller_sku"])
    audit = None
    if status is not None and status != product.status:
        audit = audit_event(product, str(status))
        product.status = str(status)
        product.reviewed = product.reviewed or product.status == "ACTIVATE"
    for sku_id, seller_sku in renames.items():
        own[sku_id].seller_sku = seller_sku
    if audit or renames:
        world.touch_product(product)
    return audit, bool(renames)


def audit_event(product: Product, new_status: str) -> str:
    """Webhook 5's `data.status` for the product moving to `new_status`."""
    if new_status == "FAILED":
        return AUDIT_FAILURE
    if new_status == "ACTIVATE" and not product.reviewed:
        return FIRST_PASS_REVIEW
    return STATUS_CHANGED

"""Control routes that grow the seeded world: more shops for one seller (a cross-border seller has one shop per
country, all covered by one authorization, API facts §10.6) and large catalogs (Search Products stops at 10,000
results, §10.5).

- `POST /sandbox/shops` `{"name", "region", "seller_type"?, "same_seller_as"?}`: a new shop with a sales and a
  return warehouse ("<region> Warehouse"), a seller-shipping delivery option and two products (`RED-S-<region>`,
  `BLUE-S-<region>`); with `same_seller_as`, the authorization of that shop's seller covers it too.
- `POST /sandbox/products/bulk` `{"shop_id", "count", "seller_sku_prefix"?}`: `count` one-SKU products
  (`<prefix>-000001`, ...) with 100 in the shop's first sales warehouse, created and updated one second apart
  (the newest now), so `update_time` windows can split them. No webhooks.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.tiktok_sandbox.world import PROVIDERS, SEEDED_STOCK, Product, Shop, Sku, World, WorldError

MAX_BULK = 200_000
GENERIC_PROVIDERS = [("7254000000000000001", "Royal Mail"), ("7254000000000000002", "DPD"),
                     ("7254000000000000003", "DHL eCommerce")]


def add_shop(world: World, doc: dict[str, Any]) -> Shop:
    region = str(doc.get("region") or "").upper()
    if len(region) != 2 or not region.isalpha():
        raise WorldError("region must be a two-letter market code, e.g. GB")
    seller_type = str(doc.get("seller_type") or "CROSS_BORDER")
    if seller_type not in ("LOCAL", "CROSS_BORDER"):
        raise WorldError("seller_type must be LOCAL or CROSS_BORDER")
    seller = world.shop(str(doc["same_seller_as"])).seller_key if doc.get("same_seller_as") else ""
    shop_id = world.new_id()
    shop = Shop(shop_id, str(doc.get("name") or f"Sandbox {region} Store"), region, f"ROW_{world._hex(24)}",
                f"{region}CB{shop_id[-4:]}", seller_type, seller=seller)
    world.shops[shop_id] = shop
    sales, returns = world.new_id(), world.new_id()
    world.warehouses[shop_id] = [
        {"id": wid, "name": f"{region} Warehouse", "type": wtype, "effect_status": "ENABLED",
         "sub_type": "CB_OVERSEA_WAREHOUSE" if seller_type == "CROSS_BORDER" else "DOMESTIC_WAREHOUSE",
         "is_default": wtype == "SALES_WAREHOUSE", "entity_id": f"e{wid[-3:]}",
         "address": {"region": region, "full_address": f"{region} Warehouse, {region}"}}
        for wid, wtype in ((sales, "SALES_WAREHOUSE"), (returns, "RETURN_WAREHOUSE"))]
    option_id = f"dopt-{region.lower()}-{shop_id[-6:]}"
    world.delivery_options[sales] = [{"id": option_id, "name": "Shipped from seller", "type": "SEND_BY_SELLER",
                                      "description": "Seller ships with their own carrier",
                                      "platform": ["TIKTOK_SHOP"]}]
    world.shipping_providers[option_id] = [{"id": i, "name": n} for i, n in PROVIDERS.get(region, GENERIC_PROVIDERS)]
    world.products[shop_id] = []
    for colour in ("RED", "BLUE"):
        world.add_product(shop_id, f"{colour.title()} T-shirt", "ACTIVATE",
                          [(f"{colour}-S-{region}", "12.99", {sales: SEEDED_STOCK})])
    return shop


def add_bulk_products(world: World, doc: dict[str, Any]) -> int:
    shop = world.shop(doc.get("shop_id"))
    count, prefix = doc.get("count"), str(doc.get("seller_sku_prefix") or "BULK")
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_BULK:
        raise WorldError(f"count must be an integer from 1 to {MAX_BULK}")
    warehouse = world.sales_warehouses(shop.id)[0]["id"]
    now = int(world.clock())
    for n in range(1, count + 1):
        at = now - count + n
        seller_sku = f"{prefix}-{n:06d}"
        sku = Sku(world.new_id(), seller_sku, seller_sku, "9.99", {warehouse: SEEDED_STOCK})
        world.products[shop.id].append(Product(world.new_id(), shop.id, f"Bulk product {n}", [sku], "ACTIVATE", at, at))
    return count


class SellerControl:
    def __init__(self, world: World) -> None:
        self.world = world

    def routes(self) -> list[Route]:
        return [Route("/sandbox/shops", self.create_shop, methods=["POST"]),
                Route("/sandbox/products/bulk", self.create_products, methods=["POST"])]

    async def create_shop(self, request: Request) -> Response:
        shop = add_shop(self.world, await _json(request))
        return JSONResponse({"id": shop.id, "name": shop.name, "region": shop.region, "seller_type": shop.seller_type,
                             "cipher": shop.cipher, "warehouses": self.world.warehouses[shop.id]}, status_code=201)

    async def create_products(self, request: Request) -> Response:
        doc = await _json(request)
        count = add_bulk_products(self.world, doc)
        shop = self.world.shop(doc.get("shop_id"))
        return JSONResponse({"created": count, "shop_products": len(self.world.products[shop.id])}, status_code=201)


async def _json(request: Request) -> dict[str, Any]:
    try:
        doc = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        raise WorldError("body must be JSON") from None
    if not isinstance(doc, dict):
        raise WorldError("body must be a JSON object")
    return doc

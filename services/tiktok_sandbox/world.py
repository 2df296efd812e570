"""The sandbox's deterministic, seeded world: shops, warehouses, stock, delivery options, products, orders,
packages, tokens and auth codes."""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LIFECYCLE = ["UNPAID", "ON_HOLD", "AWAITING_SHIPMENT", "AWAITING_COLLECTION", "IN_TRANSIT", "DELIVERED", "COMPLETED"]
STATUSES = frozenset(LIFECYCLE) | {"CANCELLED", "PARTIALLY_SHIPPING"}
ACCESS_TOKEN_TTL_S = 7 * 24 * 3600
REFRESH_TOKEN_TTL_S = 365 * 24 * 3600
AUTH_CODE_TTL_S = 30 * 60
PRODUCT_STATUSES = frozenset({"DRAFT", "PENDING", "FAILED", "ACTIVATE", "SELLER_DEACTIVATED", "PLATFORM_DEACTIVATED",
                              "FREEZE", "DELETED"})
UNREVIEWED_STATUSES = frozenset({"DRAFT", "PENDING", "FAILED"})  # not (yet) through TikTok's first review
# Markets where Mark Package As Shipped works and orders carry no package before shipment (§8.2).
MARK_MARKETS = frozenset({"US", "GB", "UK", "ES", "IE", "IT", "DE", "FR", "JP"})
SEEDED_STOCK = 100
# Stable 19-digit carrier ids per shop region (the seller-shipping delivery option's providers).
PROVIDERS = {
    "US": [("7117858858072016686", "USPS"), ("7117859084333745966", "UPS"), ("7129736293666686766", "FedEx"),
           ("7212608507307099950", "DHL eCommerce")],
    "MY": [("7208502187360519982", "J&T Express"), ("7208502187360519983", "Pos Malaysia"),
           ("7212608507307099951", "DHL eCommerce")],
}


class WorldError(ValueError):
    """A control-API request the world cannot satisfy (unknown shop, bad status...)."""


@dataclass(slots=True)
class Shop:
    id: str
    name: str
    region: str
    cipher: str
    code: str
    seller_type: str = "LOCAL"
    authorized: bool = True
    seller: str = ""  # shops of one seller account share it (a cross-border seller's shops); "" = its own id

    @property
    def seller_key(self) -> str:
        return self.seller or self.id


@dataclass(slots=True)
class Sku:
    id: str
    seller_sku: str
    name: str
    price: str
    inventory: dict[str, int] = field(default_factory=dict)  # warehouse id -> available quantity

    @property
    def total(self) -> int:
        return sum(self.inventory.values())


@dataclass(slots=True)
class Product:
    id: str
    shop_id: str
    title: str
    skus: list[Sku]
    status: str = "ACTIVATE"
    create_time: int = 0
    update_time: int = 0
    reviewed: bool = True  # has passed TikTok's first review (False while DRAFT / PENDING / FAILED from creation)


@dataclass(slots=True)
class Grant:
    """Tokens of one authorization: of the shop consented from and every shop of the same seller."""

    shop_id: str
    access_token: str
    access_expires: int
    refresh_token: str
    refresh_expires: int
    shop_ids: tuple[str, ...] = ()

    def covers(self, shop_id: str) -> bool:
        return shop_id == self.shop_id or shop_id in self.shop_ids


class World:
    """All sandbox state; every mutation goes through a method here."""

    def __init__(self, seed: int = 42, clock: Callable[[], float] = time.time) -> None:
        self.rng = random.Random(seed)
        self.clock = clock
        self.shops: dict[str, Shop] = {}
        self.warehouses: dict[str, list[dict[str, Any]]] = {}
        self.products: dict[str, list[Product]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.grants: dict[str, Grant] = {}  # access token -> grant
        self.refresh_index: dict[str, str] = {}  # refresh token -> access token
        self.auth_codes: dict[str, tuple[str, float]] = {}  # code -> (shop_id, issued_at)
        self.delivery_options: dict[str, list[dict[str, Any]]] = {}  # sales warehouse id -> options
        self.shipping_providers: dict[str, list[dict[str, str]]] = {}  # delivery option id -> providers
        self.shipments: list[dict[str, Any]] = []  # journal of applied shipping writes
        self.inventory_updates: list[dict[str, Any]] = []  # journal of applied Update Inventory calls
        self.retracked_packages: set[str] = set()  # packages whose shipping info was updated (once allowed)
        self._next_id = 576461413038785000 + (seed % 10**6) * 10**6  # runs with other seeds never share ids
        self._next_package_id = 1152921504606000000 + (seed % 10**6) * 10**6  # own counter: order ids stay put
        self._build()

    # ---- seeded catalogue ----------------------------------------------------------------------------------
    def _build(self) -> None:
        specs = [
            ("7494049642642441621", "Sandbox US Store", "US", [
                ("7000000000000000001", "LA Warehouse", "SALES_WAREHOUSE", True),
                ("7000000000000000002", "NJ Warehouse", "SALES_WAREHOUSE", False),
                ("7000000000000000003", "LA Warehouse", "RETURN_WAREHOUSE", False),
                ("7000000000000000004", "Shared Name Warehouse", "SALES_WAREHOUSE", False),
                ("7000000000000000005", "Shared Name Warehouse", "SALES_WAREHOUSE", False),
            ]),
            ("7494049642642441622", "Sandbox MY Store", "MY", [
                ("7100000000000000001", "KL Warehouse", "SALES_WAREHOUSE", True),
                ("7100000000000000002", "KL Warehouse", "RETURN_WAREHOUSE", False),
            ]),
        ]
        colours = ["RED", "BLUE", "GREEN", "BLACK", "WHITE"]
        now = int(self.clock())
        for n, (shop_id, name, region, warehouses) in enumerate(specs):
            self.shops[shop_id] = Shop(shop_id, name, region, f"ROW_{self._hex(24)}", f"{region}LC{n}SHOP")
            self.warehouses[shop_id] = [{
                "id": wid, "name": wname, "type": wtype, "effect_status": "ENABLED",
                "sub_type": "DOMESTIC_WAREHOUSE", "is_default": default, "entity_id": f"e{wid[-3:]}",
                "address": {"region": region, "full_address": f"{wname}, {region}"},
            } for wid, wname, wtype, default in warehouses]
            option_id = f"dopt-{region.lower()}-seller"
            option = {"id": option_id, "name": "Shipped from seller", "type": "SEND_BY_SELLER",
                      "description": "Seller ships with their own carrier", "platform": ["TIKTOK_SHOP"]}
            for warehouse in self.sales_warehouses(shop_id):
                self.delivery_options[warehouse["id"]] = [dict(option)]
            self.shipping_providers[option_id] = [{"id": i, "name": pn} for i, pn in PROVIDERS[region]]
            products = []
            for p in range(6):
                pid = f"17295929697{n}{p:07d}"
                skus = []
                for s, size in enumerate(["S", "M", "L"][: 1 + (p % 3)]):
                    seller_sku = "" if (p == 5 and s == 0) else f"{colours[p % 5]}-{size}{'' if n == 0 else '-MY'}"
                    skus.append(Sku(f"{pid}{s:02d}", seller_sku, f"{colours[p % 5].title()} {size}",
                                    f"{10 + p * 5 + s}.99", self._seed_stock(shop_id, n, p)))
                products.append(Product(pid, shop_id, f"{colours[p % 5].title()} T-shirt {p}", skus,
                                        create_time=now, update_time=now))
            self.products[shop_id] = products

    def _seed_stock(self, shop_id: str, shop_index: int, product_index: int) -> dict[str, int]:
        """100 in the shop's first sales warehouse; in the US the BLACK product also sits in NJ, WHITE only in
        the two "Shared Name Warehouse"s."""
        if shop_index == 0 and product_index == 3:
            return {"7000000000000000001": SEEDED_STOCK, "7000000000000000002": 60}
        if shop_index == 0 and product_index == 4:
            return {"7000000000000000004": 30, "7000000000000000005": 30}
        return {self.sales_warehouses(shop_id)[0]["id"]: SEEDED_STOCK}

    def _hex(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def shop(self, shop_id: str | None) -> Shop:
        if shop_id is None:
            return next(iter(self.shops.values()))
        if shop_id not in self.shops:
            raise WorldError(f"unknown shop_id {shop_id!r}; known: {', '.join(self.shops)}")
        return self.shops[shop_id]

    def shop_by_cipher(self, cipher: str) -> Shop | None:
        return next((s for s in self.shops.values() if s.cipher == cipher), None)

    def sales_warehouses(self, shop_id: str) -> list[dict[str, Any]]:
        return [w for w in self.warehouses[shop_id] if w["type"] == "SALES_WAREHOUSE"]

    def delivery_option_id(self, shop_id: str, warehouse_id: str) -> str:
        """The seller-shipping option of the warehouse (of the shop's first sales warehouse if it has none)."""
        options = self.delivery_options.get(warehouse_id) or self.delivery_options[
            self.sales_warehouses(shop_id)[0]["id"]]
        return str(options[0]["id"])

    def new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def new_package_id(self) -> str:
        self._next_package_id += 1
        return str(self._next_package_id)

    # ---- products and stock --------------------------------------------------------------------------------
    def product(self, product_id: str, shop_id: str | None = None) -> Product | None:
        """The product with this id (of `shop_id` when given), or None."""
        shops = [shop_id] if shop_id is not None else list(self.products)
        return next((p for sid in shops for p in self.products.get(sid, []) if p.id == product_id), None)

    def find_sku(self, shop_id: str, sku_id: str) -> tuple[Sku, Product] | None:
        return next(((k, p) for p in self.products.get(shop_id, []) for k in p.skus if k.id == sku_id), None)

    def add_product(self, shop_id: str, title: str, status: str, skus: list[tuple[str, str, dict[str, int]]]
                    ) -> Product:
        """A new product (ids from the world's counter); `skus` are (seller_sku, price, inventory)."""
        self.shop(shop_id)
        if status not in PRODUCT_STATUSES:
            raise WorldError(f"unknown product status {status!r}; one of {', '.join(sorted(PRODUCT_STATUSES))}")
        now = int(self.clock())
        product_id = self.new_id()
        product = Product(product_id, shop_id, title, [
            Sku(self.new_id(), seller_sku, seller_sku or "Default", price, dict(inventory))
            for seller_sku, price, inventory in skus], status, now, now, status not in UNREVIEWED_STATUSES)
        self.products[shop_id].append(product)
        return product

    def touch_product(self, product: Product) -> None:
        product.update_time = max(int(self.clock()), product.update_time + 1)

    # ---- OAuth ---------------------------------------------------------------------------------------------
    def issue_auth_code(self, shop_id: str) -> str:
        code = f"code_{secrets.token_hex(12)}"
        self.auth_codes[code] = (shop_id, self.clock())
        return code

    def redeem_auth_code(self, code: str) -> Grant | None:
        """A code works once, within 30 minutes."""
        entry = self.auth_codes.pop(code, None)
        if entry is None or self.clock() - entry[1] > AUTH_CODE_TTL_S:
            return None
        self.shops[entry[0]].authorized = True
        return self._grant(entry[0])

    def refresh(self, refresh_token: str) -> Grant | None:
        old = self.refresh_index.pop(refresh_token, None)
        if old is None:
            return None
        grant = self.grants.pop(old, None)
        if grant is None or grant.refresh_expires < self.clock():
            return None
        return self._grant(grant.shop_id)

    def _grant(self, shop_id: str) -> Grant:
        now = int(self.clock())
        seller = self.shops[shop_id].seller_key
        covered = tuple(s.id for s in self.shops.values() if s.seller_key == seller)
        grant = Grant(shop_id, f"TTP_{secrets.token_urlsafe(24)}", now + ACCESS_TOKEN_TTL_S,
                      f"TTR_{secrets.token_urlsafe(24)}", now + REFRESH_TOKEN_TTL_S, covered)
        self.grants[grant.access_token] = grant
        self.refresh_index[grant.refresh_token] = grant.access_token
        return grant

    def expire_tokens(self, shop_id: str | None = None) -> int:
        """Make current access tokens expired (refresh tokens stay valid)."""
        count = 0
        for grant in self.grants.values():
            if shop_id is None or grant.covers(shop_id):
                grant.access_expires = int(self.clock()) - 1
                count += 1
        return count

    def deauthorize(self, shop_id: str) -> None:
        self.shop(shop_id).authorized = False
        for token in [t for t, g in self.grants.items() if g.covers(shop_id)]:
            grant = self.grants.pop(token)
            self.refresh_index.pop(grant.refresh_token, None)

    # ---- orders --------------------------------------------------------------------------------------------
    def create_order(self, spec: dict[str, Any]) -> dict[str, Any]:
        shop = self.shop(spec.get("shop_id"))
        status = _status(spec.get("status", "AWAITING_SHIPMENT"))
        warehouse_id = str(spec.get("warehouse_id") or self.sales_warehouses(shop.id)[0]["id"])
        shipping_type = spec.get("shipping_type", "SELLER")
        fulfillment_type = spec.get("fulfillment_type", "FULFILLMENT_BY_SELLER")
        lines_spec = spec.get("lines") or self._random_lines(shop.id)
        self._next_id += 1
        order_id = str(self._next_id)
        now = int(self.clock())
        line_items = []
        for spec_line in lines_spec:
            sku, product = self._find_sku(shop.id, spec_line)
            for _ in range(int(spec_line.get("quantity", 1))):
                self._next_id += 1
                line_items.append({
                    "id": str(self._next_id), "sku_id": sku.id, "product_id": product.id,
                    "product_name": product.title, "sku_name": sku.name, "seller_sku": sku.seller_sku,
                    "sku_image": "", "original_price": sku.price, "sale_price": sku.price, "currency": "USD",
                    "seller_discount": "0", "platform_discount": "0", "display_status": status,
                    "package_id": "", "package_status": "TO_FULFILL", "is_gift": False, "sku_type": "NORMAL",
                })
        order = {
            "id": order_id, "status": status, "user_id": f"7{self.rng.randrange(10**17):017d}",
            "buyer_email": "buyer@example.invalid", "create_time": now, "update_time": now, "paid_time": now,
            "rts_sla_time": now + 2 * 86400, "tts_sla_time": now + 5 * 86400, "cancel_order_sla_time": now + 3600,
            "shipping_due_time": now + 3 * 86400, "collection_due_time": now + 4 * 86400,
            "delivery_due_time": now + 10 * 86400, "fulfillment_type": fulfillment_type,
            "shipping_type": shipping_type, "warehouse_id": warehouse_id,
            "delivery_option_id": self.delivery_option_id(shop.id, warehouse_id),
            "delivery_option_name": "Shipped from seller", "delivery_type": "HOME_DELIVERY",
            "is_on_hold_order": status == "ON_HOLD", "is_cod": False, "is_sample_order": False,
            "is_replacement_order": False, "is_buyer_request_cancel": False, "packages": [],
            "payment": {"currency": "USD", "sub_total": _total(line_items), "total_amount": _total(line_items),
                        "shipping_fee": "0.00", "tax": "0.00"},
            "recipient_address": {"name": "Sam Buyer", "phone_number": "(+1)555-0100",
                                  "full_address": "1 Main St, Springfield", "address_line1": "1 Main St",
                                  "postal_code": "12345", "region_code": shop.region},
            "line_items": line_items,
            "_shop_id": shop.id,
        }
        if shop.region not in MARK_MARKETS:  # elsewhere TikTok packs the order at creation (§8.2)
            package_id = self.new_package_id()
            order["packages"] = [{"id": package_id}]
            for line in line_items:
                line["package_id"] = package_id
        self.orders[order_id] = order
        return order

    def _random_lines(self, shop_id: str) -> list[dict[str, Any]]:
        products = self.products[shop_id]
        picks = self.rng.sample(products[:5], k=self.rng.randint(1, 2))
        return [{"sku_id": self.rng.choice(p.skus).id, "quantity": self.rng.randint(1, 3)} for p in picks]

    def _find_sku(self, shop_id: str, spec: dict[str, Any]) -> tuple[Sku, Product]:
        for product in self.products[shop_id]:
            for sku in product.skus:
                if ("sku_id" in spec and sku.id == spec["sku_id"]) or (
                        "sku_id" not in spec and spec.get("seller_sku") and sku.seller_sku == spec["seller_sku"]):
                    return sku, product
        # an ad-hoc SKU the test names: give it a product of its own
        self._next_id += 1
        sku = Sku(str(spec.get("sku_id") or self._next_id), str(spec.get("seller_sku", "")), "Custom", "9.99",
                  {self.sales_warehouses(shop_id)[0]["id"]: SEEDED_STOCK})
        now = int(self.clock())
        product = Product(f"9{self._next_id}", shop_id, f"Custom product {sku.id}", [sku], create_time=now,
                          update_time=now)
        self.products[shop_id].append(product)
        return sku, product

    def move_order(self, order_id: str, status: str) -> dict[str, Any]:
        order = self.order(order_id)
        order["status"] = _status(status)
        order["update_time"] = max(int(self.clock()), order["update_time"] + 1)
        order["is_on_hold_order"] = order["is_on_hold_order"] or status == "ON_HOLD"
        for line in order["line_items"]:
            line["display_status"] = order["status"]
        return order

    def ship_lines(self, order: dict[str, Any], lines: list[dict[str, Any]], package_id: str,
                   provider: dict[str, str], tracking_number: str) -> None:
        """The seller shipped `lines` in `package_id`: AWAITING_COLLECTION once every live line is shipped,
        else PARTIALLY_SHIPPING (unshipped lines keep their display status)."""
        now = int(self.clock())
        if not any(p["id"] == package_id for p in order["packages"]):
            order["packages"].append({"id": package_id})
        for line in lines:
            line.update({"package_id": package_id, "package_status": "PROCESSING", "tracking_number": tracking_number,
                         "shipping_provider_id": provider["id"], "shipping_provider_name": provider["name"],
                         "rts_time": now, "display_status": "AWAITING_COLLECTION"})
        live = [line for line in order["line_items"] if line["display_status"] != "CANCELLED"]
        order["status"] = "AWAITING_COLLECTION" if all(is_shipped(x) for x in live) else "PARTIALLY_SHIPPING"
        self._set_tracking(order, provider, tracking_number)

    def retrack_lines(self, order: dict[str, Any], lines: list[dict[str, Any]], provider: dict[str, str],
                      tracking_number: str) -> None:
        """New tracking number / carrier on already shipped lines."""
        for line in lines:
            line.update({"tracking_number": tracking_number, "shipping_provider_id": provider["id"],
                         "shipping_provider_name": provider["name"]})
        self._set_tracking(order, provider, tracking_number)

    def age_shipment(self, order_id: str, rts_time: int) -> dict[str, Any]:
        """Backdate the shipped lines' `rts_time` (to test the 72 h tracking-correction window)."""
        order = self.order(order_id)
        lines = [line for line in order["line_items"] if is_shipped(line)]
        if not lines:
            raise WorldError(f"order {order_id} has no shipped lines")
        for line in lines:
            line["rts_time"] = int(rts_time)
        return order

    def _set_tracking(self, order: dict[str, Any], provider: dict[str, str], tracking_number: str) -> None:
        order.update({"tracking_number": tracking_number, "shipping_provider": provider["name"],
                      "shipping_provider_id": provider["id"]})
        order["update_time"] = max(int(self.clock()), order["update_time"] + 1)

    def order(self, order_id: str) -> dict[str, Any]:
        if order_id not in self.orders:
            raise WorldError(f"unknown order {order_id!r}")
        return self.orders[order_id]

    def public_order(self, order: dict[str, Any]) -> dict[str, Any]:
        """The order as the API shows it (internal fields dropped)."""
        return {k: v for k, v in order.items() if not k.startswith("_")}

    def state(self) -> dict[str, Any]:
        return {
            "shops": [{"id": s.id, "name": s.name, "region": s.region, "cipher": s.cipher, "code": s.code,
                       "seller_type": s.seller_type, "authorized": s.authorized} for s in self.shops.values()],
            "warehouses": {sid: ws for sid, ws in self.warehouses.items()},
            "products": {sid: [{"id": p.id, "title": p.title, "status": p.status, "skus": [
                {"id": k.id, "seller_sku": k.seller_sku, "name": k.name} for k in p.skus]} for p in ps]
                for sid, ps in self.products.items()},
            "order_count": len(self.orders),
        }


def is_shipped(line: dict[str, Any]) -> bool:
    """A line the seller has shipped (it carries a tracking number)."""
    return bool(line.get("tracking_number"))


def _status(value: object) -> str:
    text = str(value)
    if text == "CANCEL":
        text = "CANCELLED"
    if text not in STATUSES:
        raise WorldError(f"unknown status {value!r}; one of {', '.join(sorted(STATUSES))}")
    return text


def _total(lines: list[dict[str, Any]]) -> str:
    return f"{sum(float(line['sale_price']) for line in lines):.2f}"

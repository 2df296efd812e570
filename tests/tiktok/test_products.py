"""The product parser (no broker): the sandbox's Get Product answers read as `Product`; a malformed one names its
field."""

from __future__ import annotations

from typing import Any

import pytest

from services.tiktok_sandbox import stock
from services.tiktok_sandbox.world import World
from shared.tiktok.errors import MalformedPayload
from shared.tiktok.products import Product, Sku, SkuStock, parse_product

US_SHOP = "7494049642642441621"


def test_the_sandboxs_products_parse_with_their_skus_and_warehouses() -> None:
    world = World(seed=5)
    shop = world.shop(US_SHOP)
    for product in world.products[US_SHOP]:
        raw = stock.get_product(world, shop, product.id)
        parsed = parse_product(raw)
        assert (parsed.id, parsed.status, parsed.update_time) == (raw["id"], raw["status"], raw["update_time"])
        assert [(s.id, s.seller_sku, s.warehouse_ids) for s in parsed.skus] == [
            (s["id"], s["seller_sku"], tuple(i["warehouse_id"] for i in s["inventory"])) for s in raw["skus"]]


def test_ids_sent_as_numbers_read_as_strings_and_a_sku_may_lack_a_seller_sku() -> None:
    product = parse_product(b'{"id":732357708734418520388,"skus":[{"id":73235770873441823254,'
                            b'"inventory":[{"warehouse_id":7068517275539719942,"quantity":0}]}]}')
    assert product == Product("732357708734418520388", None, None, (
        Sku("73235770873441823254", None, (SkuStock("7068517275539719942", 0),)),))


@pytest.mark.parametrize(("raw", "field"), [
    ({"skus": []}, "id"),
    ({"id": "p", "skus": [{"seller_sku": "RED-S"}]}, "skus[0].id"),
    ({"id": "p", "skus": [{"id": "s", "inventory": [{"quantity": 1}]}]}, "skus[0].inventory[0].warehouse_id"),
    ({"id": "p", "skus": [{"id": "s", "inventory": [{"warehouse_id": "w", "quantity": "1"}]}]},
     "skus[0].inventory[0].quantity"),
    ({"id": "p", "status": 1}, "status"),
    ({"id": "p", "skus": {"id": "s"}}, "skus"),
])
def test_a_malformed_product_names_its_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(MalformedPayload) as info:
        parse_product(raw)
    assert info.value.field == field

"""The order parser (no broker): the sandbox's and the API facts' orders read as `TikTokOrder`; a malformed
order names its field; the one default (a missing `fulfillment_type`) is applied by the contract's rule."""

from __future__ import annotations

from typing import Any

import pytest

from services.tiktok_sandbox.world import World
from shared.tiktok.errors import MalformedPayload
from shared.tiktok.orders import LineItem, OrderPackage, Payment, RecipientAddress, parse_order

MY_SHOP = "7494049642642441622"  # TikTok packs its orders at creation (§8.2)


def api_order(**changes: Any) -> dict[str, Any]:
    """The API facts' condensed Get Order Detail order (§3.1), trimmed to one line."""
    order: dict[str, Any] = {
        "id": "576461413038785752", "status": "AWAITING_SHIPMENT", "create_time": 1700000000,
        "update_time": 1700000100, "paid_time": 1700000050, "rts_sla_time": 0, "shipping_due_time": 0,
        "collection_due_time": 0, "delivery_due_time": 0, "fulfillment_type": "FULFILLMENT_BY_SELLER",
        "shipping_type": "SELLER", "warehouse_id": "7000000000000000001", "delivery_option_id": "7091146663229982478",
        "delivery_type": "HOME_DELIVERY", "is_on_hold_order": False, "split_or_combine_tag": "COMBINED",
        "packages": [{"id": "1152321127278713123"}], "buyer_message": "",
        "payment": {"currency": "USD", "sub_total": "10.00", "total_amount": "12.50", "tax": "0.50"},
        "recipient_address": {"name": "Sam", "phone_number": "(+1)555", "full_address": "1 Main St",
                              "address_line1": "1 Main St", "address_line2": "", "postal_code": "12345",
                              "region_code": "US", "district_info": [{"address_level": "L0"}]},
        "line_items": [{"id": "577086512123755123", "sku_id": "1729592969712207013",
                        "product_id": "1729592969712206000", "product_name": "Tee", "sku_name": "Red L",
                        "seller_sku": "RED-L", "original_price": "12.00",
                        "sale_price": "10.00", "currency": "USD", "display_status": "AWAITING_SHIPMENT",
                        "package_id": "1152321127278713123", "package_status": "TO_FULFILL", "tracking_number": "",
                        "item_tax": [{"tax_type": "SALES_TAX", "tax_amount": "0.50"}]}],
    }
    order.update(changes)
    return order


def test_the_api_facts_order_reads_with_its_lines_and_packages() -> None:
    order = parse_order(api_order())
    assert (order.id, order.status, order.update_time, order.create_time) == (
        "576461413038785752", "AWAITING_SHIPMENT", 1700000100, 1700000000)
    assert order.line_items == (LineItem("577086512123755123", "1729592969712207013", "RED-L", "1729592969712206000",
                                         "Tee", "Red L", "10.00", "12.00", "1152321127278713123", "TO_FULFILL",
                                         "AWAITING_SHIPMENT", ""),)
    assert order.packages == (OrderPackage("1152321127278713123"),)
    assert order.payment == Payment("USD", "12.50")
    assert order.recipient_address == RecipientAddress("Sam", "(+1)555", "1 Main St", "1 Main St", "", "12345", "US")
    assert order.seller_ships and order.delivery_option_id == "7091146663229982478"


@pytest.mark.parametrize("status", ["AWAITING_SHIPMENT", "ON_HOLD", "UNPAID", "CANCELLED"])
def test_the_sandboxs_orders_parse(status: str) -> None:
    world = World(seed=5, clock=lambda: 1_800_000_000.0)
    raw = world.create_order({"shop_id": MY_SHOP, "status": status})
    order = parse_order(raw)
    assert order.id == raw["id"] and len(order.line_items) == len(raw["line_items"])
    assert [p.id for p in order.packages] == [p["id"] for p in raw["packages"]]
    assert {line.package_id for line in order.line_items} == {raw["packages"][0]["id"]}


def test_an_unassigned_package_id_reads_as_none_and_ids_sent_as_numbers_as_strings() -> None:
    order = parse_order(api_order(id=576461413038785752, line_items=[
        {"id": 1, "sku_id": 1729592969712207013, "package_id": ""}], packages=None, payment=None,
        recipient_address=None, create_time=""))
    assert order.id == "576461413038785752" and order.packages == () and order.create_time is None
    [line] = order.line_items
    assert (line.id, line.sku_id, line.package_id, line.seller_sku) == ("1", "1729592969712207013", None, None)


@pytest.mark.parametrize(("shipping_type", "fulfillment_type", "expected"), [
    ("SELLER", None, "FULFILLMENT_BY_SELLER"),  # seller shipping exists only under FULFILLMENT_BY_SELLER (§2.2)
    ("SELLER", "", "FULFILLMENT_BY_SELLER"),
    ("TIKTOK", None, None),  # TikTok ships it: fulfilled by the seller or by TikTok, nobody can tell
    (None, None, None),
    ("SELLER", "FULFILLMENT_BY_TIKTOK", "FULFILLMENT_BY_TIKTOK"),  # what TikTok sends always wins
])
def test_a_missing_fulfillment_type_follows_the_shipping_type(shipping_type: str | None,
                                                               fulfillment_type: str | None,
                                                               expected: str | None) -> None:
    raw = api_order(shipping_type=shipping_type)
    if fulfillment_type is None:
        del raw["fulfillment_type"]
    else:
        raw["fulfillment_type"] = fulfillment_type
    order = parse_order(raw)
    assert order.fulfillment_type == expected
    assert order.seller_ships is (expected == "FULFILLMENT_BY_SELLER" and shipping_type == "SELLER")


def _line(**changes: Any) -> list[dict[str, Any]]:
    return [{"id": "l1", "sku_id": "k1", **changes}]


# changes to the order -> (the field named, missing_field or invalid_field)
MALFORMED: dict[str, tuple[dict[str, Any], str, str]] = {
    "no id": ({"id": None}, "id", "invalid_field"),
    "no status": ({"status": ...}, "status", "missing_field"),
    "status a number": ({"status": 111}, "status", "invalid_field"),
    "no update_time": ({"update_time": ...}, "update_time", "missing_field"),
    "update_time a float": ({"update_time": 1.5}, "update_time", "invalid_field"),
    "update_time a date": ({"update_time": "2026-12-01"}, "update_time", "invalid_field"),
    "paid_time a bool": ({"paid_time": True}, "paid_time", "invalid_field"),
    "warehouse id an object": ({"warehouse_id": {"id": "w"}}, "warehouse_id", "invalid_field"),
    "shipping_type a number": ({"shipping_type": 1}, "shipping_type", "invalid_field"),
    "line items an object": ({"line_items": {"id": "l1"}}, "line_items", "invalid_field"),
    "a line without sku": ({"line_items": [{"id": "l1"}]}, "line_items[0].sku_id", "missing_field"),
    "a line with an empty sku": ({"line_items": _line(sku_id="")}, "line_items[0].sku_id", "invalid_field"),
    "a second line without id": ({"line_items": [*_line(), {"sku_id": "k2"}]}, "line_items[1].id",
                                 "missing_field"),
    "a price as a number": ({"line_items": _line(sale_price=10.0)}, "line_items[0].sale_price", "invalid_field"),
    "a package without id": ({"packages": [{}]}, "packages[0].id", "missing_field"),
    "an address as text": ({"recipient_address": "1 Main St"}, "recipient_address", "invalid_field"),
    "a postal code as a number": ({"recipient_address": {"postal_code": 12345}}, "recipient_address.postal_code",
                                  "invalid_field"),
    "money as a number": ({"payment": {"total_amount": 12.5}}, "payment.total_amount", "invalid_field"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_order_names_its_field(case: str) -> None:
    changes, field, problem = MALFORMED[case]
    raw = {k: v for k, v in (api_order() | changes).items() if v is not ...}
    with pytest.raises(MalformedPayload) as info:
        parse_order(raw)
    assert (info.value.field, info.value.problem) == (field, problem)

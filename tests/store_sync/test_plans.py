"""The pure decisions of store sync: record parsing, shipment plans, carrier matching, inventory plans."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from services.store_sync.carriers import UnknownCarrier, match_carrier
from services.store_sync.catalog import Catalog, CatalogEntry, CatalogSku, entries_from_products
from services.store_sync.inventory_plan import Target, find_targets, plan_update
from services.store_sync.records import BadRecord, Shipment, parse_shipment, parse_stock
from services.store_sync.shipment_plan import choose_endpoint, plan_shipment
from shared.stores.model import LINKED, StoreRecord
from shared.tiktok.models import ShippingProvider
from shared.tiktok.orders import TikTokOrder, parse_order

SHIPMENT = {"shipment_id": "s1", "shop_id": "7", "order_id": "9", "carrier": "usps", "tracking_number": "TRK123456",
            "line_item_ids": None, "shipped_at": "2026-11-25T10:00:00Z"}


@pytest.mark.parametrize(("change", "reason"), [
    ({"carrier": None}, "shipment:missing_field:carrier"),
    ({"tracking_number": "  "}, "shipment:invalid_field:tracking_number"),
    ({"line_item_ids": []}, "shipment:invalid_field:line_item_ids"),
    ({"line_item_ids": [1]}, "shipment:invalid_field:line_item_ids"),
    ({"shipped_at": "yesterday"}, "shipment:invalid_field:shipped_at"),
    ({"shipped_at": "2026-11-25T10:00:00"}, "shipment:invalid_field:shipped_at"),
])
def test_bad_shipments_name_the_field(change: dict[str, object], reason: str) -> None:
    doc = SHIPMENT | change
    doc = {k: v for k, v in doc.items() if v is not None or k != "carrier"}
    with pytest.raises(BadRecord) as info:
        parse_shipment(orjson.dumps(doc))
    assert info.value.reason == reason


@pytest.mark.parametrize(("value", "reason"), [
    (b"{not json", "inventory:invalid_json"),
    (b"[1]", "inventory:invalid_json"),
    (None, "inventory:empty_record"),
    (b'{"product_code": "P", "as_of": "2026-11-25T10:00:00Z"}', "inventory:missing_field:available"),
    (b'{"product_code": "P", "available": -1, "as_of": "2026-11-25T10:00:00Z"}', "inventory:negative_quantity"),
    (b'{"product_code": "P", "available": 1.5, "as_of": "2026-11-25T10:00:00Z"}', "inventory:invalid_field:available"),
    (b'{"product_code": "P", "available": true, "as_of": "2026-11-25T10:00:00Z"}', "inventory:invalid_field:available"),
    (b'{"product_code": "", "available": 1, "as_of": "2026-11-25T10:00:00Z"}', "inventory:invalid_field:product_code"),
])
def test_bad_stock_levels_name_the_problem(value: bytes | None, reason: str) -> None:
    with pytest.raises(BadRecord) as info:
        parse_stock(value)
    assert info.value.reason == reason


def test_good_records_parse() -> None:
    shipment = parse_shipment(orjson.dumps(SHIPMENT | {"line_item_ids": ["a", "b"]}))
    assert (shipment.key, shipment.line_item_ids) == ("7:9", ("a", "b"))
    level = parse_stock(b'{"product_code": "P", "available": 0, "as_of": "2026-11-25T10:00:00+01:00"}')
    assert (level.available, level.as_of_ts) == (0, datetime(2026, 11, 25, 9, tzinfo=UTC).timestamp())


def order(status: str = "AWAITING_SHIPMENT", lines: list[dict[str, object]] | None = None,
          **extra: object) -> TikTokOrder:
    lines = lines if lines is not None else [{"id": "l1"}, {"id": "l2"}]
    return parse_order({"id": "9", "status": status, "update_time": 1, "shipping_type": "SELLER",
                        "fulfillment_type": "FULFILLMENT_BY_SELLER",
                        "line_items": [{"sku_id": "k1", **line} for line in lines], **extra})


def shipment(**change: object) -> Shipment:
    return parse_shipment(orjson.dumps(SHIPMENT | change))


@pytest.mark.parametrize(("the_order", "the_shipment", "action", "reason"), [
    (order(), shipment(), "ship", None),
    (order("CANCELLED"), shipment(), "failed", "shipment:order_cancelled"),
    (order(shipping_type="TIKTOK"), shipment(), "skipped", "shipment:not_seller_shipping"),
    (order(fulfillment_type="FULFILLMENT_BY_TIKTOK"), shipment(), "skipped", "shipment:not_seller_shipping"),
    (order("ON_HOLD"), shipment(), "failed", "shipment:order_not_shippable"),
    (order(), shipment(line_item_ids=["nope"]), "failed", "shipment:unknown_line_items"),
    (order("AWAITING_COLLECTION", [{"id": "l1", "tracking_number": "TRK123456"}]), shipment(), "done", None),
    (order("AWAITING_COLLECTION", [{"id": "l1", "tracking_number": "trk 123456"}]), shipment(), "done", None),
    (order("AWAITING_COLLECTION", [{"id": "l1", "tracking_number": "OTHER999"}]), shipment(), "correct", None),
])
def test_shipment_plans(the_order: TikTokOrder, the_shipment: Shipment, action: str, reason: str | None) -> None:
    plan = plan_shipment(the_order, the_shipment)
    assert (plan.action, plan.reason) == (action, reason)


def test_partial_shipment_ships_only_the_named_lines_and_then_the_rest() -> None:
    first = plan_shipment(order(), shipment(line_item_ids=["l2"]))
    assert (first.line_ids, first.partial) == (["l2"], True)
    rest = plan_shipment(order("PARTIALLY_SHIPPING", [{"id": "l1"}, {"id": "l2", "tracking_number": "T0000001"}]),
                         shipment())
    assert (rest.action, rest.line_ids, rest.partial) == ("ship", ["l1"], True)
    whole = plan_shipment(order(), shipment(line_item_ids=["l1", "l2"]))
    assert whole.partial is False


def test_endpoint_follows_the_market_and_the_packages() -> None:
    with_package = plan_shipment(order(lines=[{"id": "l1", "package_id": "p1"}]), shipment())
    assert choose_endpoint("US", with_package) == "mark_package_shipped"
    assert choose_endpoint("gb", with_package) == "mark_package_shipped"
    assert choose_endpoint("MY", with_package) == "ship_package"
    assert choose_endpoint("MY", plan_shipment(order(), shipment())) == "mark_package_shipped"


def test_carriers_match_case_and_space_insensitively_and_list_valid_names() -> None:
    providers = [ShippingProvider("1", "USPS"), ShippingProvider("2", "Royal Mail")]
    assert match_carrier(" usps ", providers).id == "1"
    assert match_carrier("royalmail", providers).id == "2"
    assert match_carrier("ROYAL  MAIL", providers).id == "2"
    with pytest.raises(UnknownCarrier) as info:
        match_carrier("DHL", providers)
    assert info.value.valid == ["Royal Mail", "USPS"] and "Royal Mail, USPS" in str(info.value)


def store(shop_id: str = "S1", **extra: object) -> StoreRecord:
    return StoreRecord(nickname=f"store {shop_id}", status=LINKED, shop_id=shop_id, **extra)  # type: ignore[arg-type]


def catalog_with(*entries: CatalogEntry) -> Catalog:
    catalog = Catalog()
    for entry in entries:
        catalog.put(entry.key, entry)
    return catalog


def test_targets_fan_out_to_every_store_with_sync_on_and_explain_the_rest() -> None:
    catalog = catalog_with(CatalogEntry("S1", "RED-L", [CatalogSku("p1", "k1")]),
                           CatalogEntry("S2", "RED-L", [CatalogSku("p2", "k2"), CatalogSku("p3", "k3")]))
    stores = {"S1": store("S1", inventory_buffer=2), "S2": store("S2"), "S3": store("S3"),
              "S4": store("S4", auto_sync_inventory=False)}
    mapped = [("S1", "RED-L"), ("S2", "RED-L"), ("S3", "RED-L"), ("S4", "RED-L"), ("S5", "RED-L")]
    targets, results = find_targets("P", 10, "oms_update", mapped, stores, catalog)
    assert [(t.shop_id, t.sku_id, t.quantity) for t in targets] == [("S1", "k1", 8), ("S2", "k2", 10),
                                                                   ("S2", "k3", 10)]
    assert sorted((r.ids["shop_id"], r.reason) for r in results) == [
        ("S3", "inventory:seller_sku_not_on_tiktok"), ("S4", "inventory:store_sync_off"),
        ("S5", "inventory:store_not_linked")]
    _, unmapped = find_targets("Q", 1, "oms_update", [], stores, catalog)
    assert [r.reason for r in unmapped] == ["inventory:unmapped_product"]


def target(sku_id: str = "k1", available: int = 7, buffer: int = 0) -> Target:
    return Target("P", "S1", "RED-L", "p1", sku_id, available, buffer, "oms_update")


def test_update_sets_the_linked_warehouse_and_sends_the_others_back_unchanged() -> None:
    stock = {"k1": {"LA": 3, "NJ": 60}}
    body, changing, results = plan_update([target()], stock, {"LA"}, "Main", ["LA Warehouse"])
    assert body == [{"id": "k1", "inventory": [{"warehouse_id": "LA", "quantity": 7},
                                               {"warehouse_id": "NJ", "quantity": 60}]}]
    assert [(t.sku_id, w, before) for t, w, before in changing] == [("k1", "LA", 3)] and not results


@pytest.mark.parametrize(("stock", "linked", "reason"), [
    ({"k1": {"LA": 3, "NJ": 60}}, None, "inventory:ambiguous_warehouse"),
    ({"k1": {"W4": 3, "W5": 3}}, {"W4", "W5"}, "inventory:ambiguous_warehouse"),
    ({"k1": {"NJ": 60}}, {"LA"}, "inventory:no_linked_warehouse"),
    ({}, {"LA"}, "inventory:seller_sku_not_on_tiktok"),
])
def test_skus_without_exactly_one_linked_warehouse_are_not_updated(stock: dict[str, dict[str, int]],
                                                                   linked: set[str] | None, reason: str) -> None:
    body, changing, results = plan_update([target()], stock, linked, "Main", ["LA Warehouse"])
    assert (body, changing, [r.reason for r in results]) == ([], [], [reason])
    assert "link" in (results[0].detail or "") or reason == "inventory:seller_sku_not_on_tiktok"


def test_buffer_floors_at_zero_and_equal_quantities_need_no_call() -> None:
    assert target(available=2, buffer=5).quantity == 0
    body, _, results = plan_update([target(available=3)], {"k1": {"LA": 3}}, {"LA"}, "Main", [])
    assert body == [] and [(r.status, r.ids["changed"]) for r in results] == [("applied", False)]


def test_catalog_entries_skip_blank_seller_skus_and_deleted_products() -> None:
    products = [{"id": "p1", "status": "ACTIVATE", "skus": [
        {"id": "k1", "seller_sku": "RED-L", "inventory": [{"warehouse_id": "LA", "quantity": 1}]},
        {"id": "k2", "seller_sku": ""}]},
        {"id": "p2", "status": "DELETED", "skus": [{"id": "k3", "seller_sku": "RED-L"}]}]
    entries = entries_from_products("S1", products)
    assert list(entries) == ["S1:RED-L"]
    assert entries["S1:RED-L"].skus == [CatalogSku("p1", "k1", "ACTIVATE", ("LA",))]
    catalog = catalog_with(*entries.values())
    assert catalog.seller_sku_of("S1", "k1") == "RED-L"
    catalog.put("S1:RED-L", None)
    assert catalog.seller_sku_of("S1", "k1") is None

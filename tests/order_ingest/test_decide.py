"""The decision table, early skips and normalization (store records and warehouses: tests/stores)."""

from __future__ import annotations

import pytest

from services.order_ingest.decide import Decision, OrderFacts, decide, skip_without_fetch
from services.order_ingest.normalize import normalize_order
from shared.stores.model import DEAUTHORIZED, LINKED, StoreRecord
from shared.tiktok.orders import parse_order

BY_SELLER, BY_TIKTOK = "FULFILLMENT_BY_SELLER", "FULFILLMENT_BY_TIKTOK"
LA_ONLY, EVERY_WAREHOUSE = ["w-la"], []  # the linked store's warehouses (none named: it takes them all)
ACCEPT = Decision("accept")


def skip(*reasons: str) -> Decision:
    return Decision("skip", reasons)


def store(**changes: object) -> StoreRecord:
    base = StoreRecord(nickname="Main store", status=LINKED, shop_id="s1", warehouse_name="LA Warehouse",
                       warehouse_ids=["w-la"], warehouse_names=["LA Warehouse"])
    for k, v in changes.items():
        setattr(base, k, v)
    return base


# (status, fulfillment type, shipping type, the order's warehouse, the store's warehouses) -> the decision, its
# reasons in the order they are given
DECISIONS = [
    (("AWAITING_SHIPMENT", BY_SELLER, "SELLER", "w-la", LA_ONLY), ACCEPT),
    (("AWAITING_SHIPMENT", BY_SELLER, "SELLER", "w-other", EVERY_WAREHOUSE), ACCEPT),
    (("AWAITING_SHIPMENT", BY_SELLER, "SELLER", "w-other", LA_ONLY), skip("warehouse:w-other:not_linked")),
    (("UNPAID", BY_SELLER, "SELLER", "w-la", LA_ONLY), skip("status:UNPAID")),
    (("ON_HOLD", BY_SELLER, "SELLER", "w-la", LA_ONLY), skip("status:ON_HOLD")),
    (("AWAITING_COLLECTION", BY_SELLER, "SELLER", "w-la", LA_ONLY), skip("status:AWAITING_COLLECTION")),
    (("IN_TRANSIT", BY_SELLER, "SELLER", "w-la", EVERY_WAREHOUSE), skip("status:IN_TRANSIT")),
    (("CANCELLED", BY_SELLER, "SELLER", "w-la", LA_ONLY), skip("status:CANCELLED")),
    (("CANCEL", BY_SELLER, "SELLER", "w-la", LA_ONLY), skip("status:CANCELLED")),  # the webhooks' spelling
    (("AWAITING_SHIPMENT", BY_TIKTOK, "SELLER", "w-la", LA_ONLY), skip("fulfillment_type:FULFILLMENT_BY_TIKTOK")),
    (("AWAITING_SHIPMENT", "", "SELLER", "w-la", LA_ONLY), skip("fulfillment_type:UNKNOWN")),
    (("AWAITING_SHIPMENT", BY_SELLER, "TIKTOK", "w-la", LA_ONLY), skip("shipping_type:TIKTOK")),
    (("AWAITING_SHIPMENT", BY_SELLER, "", "w-la", EVERY_WAREHOUSE), skip("shipping_type:UNKNOWN")),
    (("AWAITING_SHIPMENT", BY_TIKTOK, "TIKTOK", "w-la", LA_ONLY),
     skip("fulfillment_type:FULFILLMENT_BY_TIKTOK", "shipping_type:TIKTOK")),
    (("AWAITING_SHIPMENT", BY_TIKTOK, "SELLER", "w-other", LA_ONLY),
     skip("fulfillment_type:FULFILLMENT_BY_TIKTOK", "warehouse:w-other:not_linked")),
    (("IN_TRANSIT", BY_SELLER, "SELLER", "w-other", LA_ONLY),
     skip("status:IN_TRANSIT", "warehouse:w-other:not_linked")),
    (("CANCELLED", BY_TIKTOK, "SELLER", "w-other", EVERY_WAREHOUSE),
     skip("status:CANCELLED", "fulfillment_type:FULFILLMENT_BY_TIKTOK")),
    (("ON_HOLD", BY_SELLER, "TIKTOK", "w-other", LA_ONLY),
     skip("status:ON_HOLD", "shipping_type:TIKTOK", "warehouse:w-other:not_linked")),
    (("UNPAID", BY_TIKTOK, "TIKTOK", "w-other", LA_ONLY),
     skip("status:UNPAID", "fulfillment_type:FULFILLMENT_BY_TIKTOK", "shipping_type:TIKTOK",
          "warehouse:w-other:not_linked")),
    (("AWAITING_COLLECTION", BY_TIKTOK, "TIKTOK", "w-other", EVERY_WAREHOUSE),
     skip("status:AWAITING_COLLECTION", "fulfillment_type:FULFILLMENT_BY_TIKTOK", "shipping_type:TIKTOK")),
]


@pytest.mark.parametrize(("facts", "expected"), DECISIONS)
def test_decision_table(facts: tuple[str, str, str, str, list[str]], expected: Decision) -> None:
    status, fulfillment, shipping, warehouse, linked = facts
    order = OrderFacts(status, fulfillment, shipping, warehouse)
    assert decide(order, store(warehouse_ids=linked), accepted_before=False) == expected


@pytest.mark.parametrize(("the_store", "reason"), [
    (None, "store:not_linked"), (store(status=DEAUTHORIZED), "store:deauthorized"),
    (store(auto_sync_orders=False), "store:auto_sync_off"),
])
def test_store_reasons(the_store: StoreRecord | None, reason: str) -> None:
    decision = decide(OrderFacts("AWAITING_SHIPMENT", "FULFILLMENT_BY_SELLER", "SELLER", "w-la"), the_store, False)
    assert decision.kind == "skip" and decision.reasons == (reason,)


@pytest.mark.parametrize(("status", "warehouse", "reason"), [
    ("CANCELLED", "w-la", "status:CANCELLED"), ("CANCEL", "w-la", "status:CANCELLED"),
    ("AWAITING_COLLECTION", "w-la", "status:AWAITING_COLLECTION"),
    ("AWAITING_SHIPMENT", "w-ny", "warehouse:w-ny:not_linked"),
])
def test_accepted_order_that_stops_qualifying_is_withdrawn(status: str, warehouse: str, reason: str) -> None:
    decision = decide(OrderFacts(status, "FULFILLMENT_BY_SELLER", "SELLER", warehouse), store(), True)
    assert decision.kind == "withdraw" and decision.reasons == (reason,)


def test_accepted_order_that_still_qualifies_is_accepted_again() -> None:
    decision = decide(OrderFacts("AWAITING_SHIPMENT", "FULFILLMENT_BY_SELLER", "SELLER", "w-la"), store(), True)
    assert decision == Decision("accept")


@pytest.mark.parametrize(("status", "before", "expected"), [
    ("UNPAID", False, "status:UNPAID"), ("CANCEL", False, "status:CANCELLED"),
    ("IN_TRANSIT", False, "status:IN_TRANSIT"), ("AWAITING_SHIPMENT", False, None), ("CANCEL", True, None),
    (None, False, None),
])
def test_skip_without_fetch(status: str | None, before: bool, expected: str | None) -> None:
    assert skip_without_fetch(status, before) == expected


def test_normalize_counts_units_per_sku_and_keeps_empty_seller_sku() -> None:
    raw = {"id": "o1", "status": "AWAITING_SHIPMENT", "update_time": 7, "warehouse_id": "w", "shipping_type": "SELLER",
           "fulfillment_type": "FULFILLMENT_BY_SELLER", "payment": {"currency": "USD"},
           "line_items": [{"id": "l1", "sku_id": "k1", "seller_sku": "RED-L", "product_id": "p", "product_name": "P",
                           "sku_name": "L"},
                          {"id": "l2", "sku_id": "k1", "seller_sku": "RED-L", "product_id": "p", "product_name": "P",
                           "sku_name": "L"},
                          {"id": "l3", "sku_id": "k2", "seller_sku": None, "product_id": "q", "product_name": "Q",
                           "sku_name": "S"}]}
    order = normalize_order(parse_order(raw), "s1", "Main store", 0)
    assert [(q.sku_id, q.seller_sku, q.quantity) for q in order.sku_quantities] == [("k1", "RED-L", 2), ("k2", "", 1)]
    assert order.order_version == 7 and order.currency == "USD" and order.key == "s1:o1"

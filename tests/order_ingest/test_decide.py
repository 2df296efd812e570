"""The decision table, early skips and normalization (store records and warehouses: tests/stores)."""

from __future__ import annotations

import itertools

import pytest

from services.order_ingest.decide import Decision, OrderFacts, decide, skip_without_fetch
from services.order_ingest.normalize import normalize_order
from shared.stores.model import DEAUTHORIZED, LINKED, StoreRecord

STATUSES = ["UNPAID", "ON_HOLD", "AWAITING_SHIPMENT", "AWAITING_COLLECTION", "IN_TRANSIT", "CANCELLED"]
FULFILMENT = ["FULFILLMENT_BY_SELLER", "FULFILLMENT_BY_TIKTOK"]
SHIPPING = ["SELLER", "TIKTOK"]
WAREHOUSE = ["linked", "other", "no_filter"]


def store(**changes: object) -> StoreRecord:
    base = StoreRecord(nickname="Main store", status=LINKED, shop_id="s1", warehouse_name="LA Warehouse",
                       warehouse_ids=["w-la"], warehouse_names=["LA Warehouse"])
    for k, v in changes.items():
        setattr(base, k, v)
    return base


@pytest.mark.parametrize(("status", "fulfilment", "shipping", "warehouse"),
                         list(itertools.product(STATUSES, FULFILMENT, SHIPPING, WAREHOUSE)))
def test_decision_table(status: str, fulfilment: str, shipping: str, warehouse: str) -> None:
    the_store = store(warehouse_ids=[] if warehouse == "no_filter" else ["w-la"])
    order = OrderFacts(status, fulfilment, shipping, "w-other" if warehouse == "other" else "w-la")
    decision = decide(order, the_store, accepted_before=False)
    expected: list[str] = []
    if status != "AWAITING_SHIPMENT":
        expected.append(f"status:{status}")
    if fulfilment != "FULFILLMENT_BY_SELLER":
        expected.append(f"fulfillment_type:{fulfilment}")
    if shipping != "SELLER":
        expected.append(f"shipping_type:{shipping}")
    if warehouse == "other":
        expected.append("warehouse:w-other:not_linked")
    assert decision.kind == ("accept" if not expected else "skip")
    assert list(decision.reasons) == expected


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
    ("UNPAID", False, "status:UNPAID"), ("CANCEL", False, "status:CANCELLED"), ("IN_TRANSIT", False, "status:IN_TRANSIT"),
    ("AWAITING_SHIPMENT", False, None), ("CANCEL", True, None), (None, False, None),
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
    order = normalize_order(raw, "s1", "Main store", 0)
    assert [(q.sku_id, q.seller_sku, q.quantity) for q in order.sku_quantities] == [("k1", "RED-L", 2), ("k2", "", 1)]
    assert order.order_version == 7 and order.currency == "USD" and order.key == "s1:o1"

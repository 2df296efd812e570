"""The order's plain-dict form: every field, in field order, at every level (the spelled-out `to_dict`s)."""

from __future__ import annotations

from dataclasses import asdict, fields

from shared.orders import ACTIVE, IngestedOrder, OrderLine, Recipient, SkuQuantity, sku_quantities


def test_to_dict_has_every_field_in_order() -> None:
    lines = [OrderLine("l1", "k1", "RED-L", "p1", "Red", "L", "9.99", "12.00", "pkg-1"),
             OrderLine("l2", "k1", "RED-L", "p1", "Red", "L")]
    order = IngestedOrder("s", "o", 3, ACTIVE, "AWAITING_SHIPMENT", "Main", "w1", "SELLER", "FBS", lines,
                          sku_quantities(lines), Recipient("Ann", "+44", "1 Road", "1 Road", None, "N1", "GB"),
                          "GBP", 1, 2, 3, 4, 5, 6, None, "2026-11-30T10:00:00Z", {"note": {"a": 1}})
    doc = order.to_dict()
    assert doc == asdict(order)
    assert list(doc) == [f.name for f in fields(IngestedOrder)]
    assert list(doc["lines"][0]) == [f.name for f in fields(OrderLine)]
    assert list(doc["sku_quantities"][0]) == [f.name for f in fields(SkuQuantity)]
    assert list(doc["recipient"]) == [f.name for f in fields(Recipient)]
    assert IngestedOrder.from_dict(doc) == order
    doc["extra"]["note"] = "changed"  # a fresh dict: the order is not touched
    assert order.extra == {"note": {"a": 1}}

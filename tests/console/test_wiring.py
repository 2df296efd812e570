"""The pure parts behind the console's pages: skipped orders by reason, the audit's skipped view, CSV problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.audit.store import AuditStore
from services.audit.timeline import Entry
from services.mapping.state import OrderState
from services.mapping.validation import InvalidMapping, parse_csv
from shared.stores.model import LINKED, StoreRecord
from shopsync.console_wiring import group_skipped

SHOP = "7494049642642441621"


def test_skipped_orders_group_by_reason_most_first_with_the_stores_fix() -> None:
    store = StoreRecord(nickname="Main store", status=LINKED, shop_id=SHOP, warehouse_names=["LA Warehouse"])
    skipped = [{"shop_id": SHOP, "order_id": "1", "reasons": ["status:ON_HOLD"]},
               {"shop_id": SHOP, "order_id": "2", "reasons": ["warehouse:7:not_linked"]},
               {"shop_id": SHOP, "order_id": "3", "reasons": ["warehouse:7:not_linked", "shipping_type:TIKTOK"]}]
    groups = group_skipped(skipped, {SHOP: store})
    assert [(g.reason, g.count, g.order_ids) for g in groups] == [
        ("warehouse:7:not_linked", 2, ["2", "3"]), ("shipping_type:TIKTOK", 1, ["3"]), ("status:ON_HOLD", 1, ["1"])]
    assert "not linked for store Main store (linked: LA Warehouse)" in groups[0].fix
    assert "TikTok ships this order" in groups[1].fix


def test_the_audit_lists_orders_whose_latest_decision_is_a_skip(tmp_path: Path) -> None:
    store = AuditStore(tmp_path / "audit.db")
    rows = [("orders.skipped", 0, 0, Entry(SHOP, "1", "2026-01-02T00:00:00Z", "skipped", {"reasons": ["status:X"]})),
            ("orders.skipped", 0, 1, Entry(SHOP, "2", "2026-01-02T00:00:00Z", "skipped", {"reasons": ["status:Y"]})),
            ("orders.ingested", 0, 0, Entry(SHOP, "2", "2026-01-02T01:00:00Z", "accepted", {})),
            ("orders.skipped", 0, 2, Entry(SHOP, "3", "2025-12-01T00:00:00Z", "skipped", {"reasons": ["status:Z"]}))]
    store.add(rows)
    assert store.skipped_since("2026-01-01T00:00:00Z") == [
        {"shop_id": SHOP, "order_id": "1", "at": "2026-01-02T00:00:00Z", "reasons": ["status:X"]}]
    store.close()


def test_a_csv_import_names_every_bad_line() -> None:
    text = f"shop_id,seller_sku,product_code\n{SHOP},A,OMS-A\n{SHOP},B,\n{SHOP},C\n{SHOP},D,OMS-D\n"
    with pytest.raises(InvalidMapping) as refused:
        parse_csv(text, OrderState())
    assert refused.value.problems == ["line 3: product_code must be a non-empty string",
                                      "line 4: expected 3 fields, found 2"]
    assert refused.value.detail == refused.value.problems[0]

"""What Update Inventory accepts (quantity range, product status), as decision tables."""

from __future__ import annotations

import pytest

from services.store_sync.catalog import Catalog, CatalogEntry, CatalogSku
from services.store_sync.inventory_plan import Target, find_targets, plan_update, result_for
from services.store_sync.inventory_rules import MAX_QUANTITY, clamp_quantity, rejection_reason, status_allows_update
from shared.stores.model import LINKED, StoreRecord


@pytest.mark.parametrize(("wanted", "sent", "clamped"), [
    (-3, 0, False), (0, 0, False), (1, 1, False), (99_999, 99_999, False), (100_000, 99_999, True),
    (10**9, 99_999, True)])
def test_quantities_are_clamped_to_tiktoks_maximum(wanted: int, sent: int, clamped: bool) -> None:
    assert clamp_quantity(wanted) == (sent, clamped)


@pytest.mark.parametrize(("status", "refused", "allowed"), [
    ("ACTIVATE", set(), True),
    ("ACTIVATE", {"ACTIVATE"}, True),  # a stale catalog, never a reason to stop pushing active products
    ("FREEZE", set(), False),
    ("DELETED", set(), False),
    ("SELLER_DEACTIVATED", set(), True),  # tried: the docs disagree, TikTok's answer decides
    ("SELLER_DEACTIVATED", {"SELLER_DEACTIVATED"}, False),
    ("PLATFORM_DEACTIVATED", {"SELLER_DEACTIVATED"}, True),
    ("DRAFT", set(), True),
])
def test_which_product_statuses_get_stock_updates(status: str, refused: set[str], allowed: bool) -> None:
    assert status_allows_update(status, refused) is allowed


@pytest.mark.parametrize(("code", "quantity", "reason"), [
    (12052055, 0, "inventory:zero_not_allowed"),
    (12019024, 0, "inventory:zero_not_allowed"),
    (12052055, 5, "inventory:rejected:12052055"),
    (12052901, 5, "inventory:product_status_not_allowed"),
    (12052097, 5, "inventory:rejected:12052097"),
])
def test_refusals_get_precise_reasons(code: int, quantity: int, reason: str) -> None:
    assert rejection_reason(code, quantity) == reason


def target(available: int, buffer: int = 0, status: str = "ACTIVATE") -> Target:
    return Target("P", "S1", "RED-L", "p1", "k1", available, buffer, "oms_update", status)


def test_a_clamped_quantity_is_sent_as_the_maximum_and_the_result_says_so() -> None:
    big = target(150_000, buffer=10)
    body, changing, _ = plan_update([big], {"k1": {"LA": 3}}, {"LA"}, "Main", [])
    assert body == [{"id": "k1", "inventory": [{"warehouse_id": "LA", "quantity": MAX_QUANTITY}]}]
    assert changing == [(big, "LA", 3)]  # the warehouse it changes, and the quantity there before
    result = result_for(big, "applied")
    assert result.ids["clamped"] is True and result.ids["quantity"] == MAX_QUANTITY
    assert "149,990" in (result.detail or "") and "99,999" in (result.detail or "")
    assert result_for(target(5), "applied").ids["clamped"] is False and result_for(target(5), "applied").detail is None


def store() -> StoreRecord:
    return StoreRecord(nickname="Main", status=LINKED, shop_id="S1", warehouse_ids=["LA"])


@pytest.mark.parametrize(("status", "refused", "outcome"), [
    ("ACTIVATE", {}, "target"),
    ("FREEZE", {}, "inventory:product_status_not_allowed"),
    ("SELLER_DEACTIVATED", {}, "target"),
    ("SELLER_DEACTIVATED", {"S1": {"SELLER_DEACTIVATED"}}, "inventory:product_status_not_allowed"),
])
def test_products_in_statuses_tiktok_refuses_are_skipped_naming_the_status(
        status: str, refused: dict[str, set[str]], outcome: str) -> None:
    catalog = Catalog()
    catalog.put("S1:RED-L", CatalogEntry("S1", "RED-L", [CatalogSku("p1", "k1", status, ("LA",))]))
    targets, results = find_targets("P", 4, "oms_update", [("S1", "RED-L")], {"S1": store()}, catalog,
                                    refused=refused)
    if outcome == "target":
        assert [t.product_status for t in targets] == [status] and results == []
    else:
        [result] = results
        assert (targets, result.status, result.reason) == ([], "skipped", outcome)
        assert status in (result.detail or "") and result.ids["product_status"] == status

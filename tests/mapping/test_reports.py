"""The admin API's pure reports: the unmapped-SKU report, the change preview, next versions, per-shop listing."""

from __future__ import annotations

import pytest

from services.mapping.reports import (
    ChangePreview,
    UnmappedSku,
    mappings_of_shop,
    next_mapping,
    preview_change,
    unmapped_report,
)
from shared.mappings import Mapping
from tests.mapping.conftest import SHOP, make_order

OTHER = "7494049642642449999"
P1 = Mapping("P-1", "2026-01-01T00:00:00Z", "ann", 1)
P2 = Mapping("P-2", "2026-01-02T00:00:00Z", "bob", 4)


# ---- unmapped_report ---------------------------------------------------------------------------------------------
def test_unmapped_report_groups_waiting_orders_per_sku_most_waited_on_first() -> None:
    orders = [make_order("o1", [("BLUE-M", "k2")]), make_order("o2", [("RED-L", "k1"), ("BLUE-M", "k2")]),
              make_order("o3", [("RED-L", "k1")]), make_order("o4", [("RED-L", "k1")])]
    assert unmapped_report(orders, {}) == [
        UnmappedSku(SHOP, "RED-L", "unmapped", "Product k1", "k1", 3, ["o2", "o3", "o4"]),
        UnmappedSku(SHOP, "BLUE-M", "unmapped", "Product k2", "k2", 2, ["o1", "o2"]),
    ]


def test_mapped_lines_are_left_out_of_the_unmapped_report() -> None:
    orders = [make_order("o1", [("RED-L", "k1"), ("BLUE-M", "k2")])]
    assert unmapped_report(orders, {f"{SHOP}:RED-L": P1}) == [
        UnmappedSku(SHOP, "BLUE-M", "unmapped", "Product k2", "k2", 1, ["o1"]),
    ]


def test_a_line_without_seller_sku_is_reported_as_missing_not_unmapped() -> None:
    orders = [make_order("o1", [("", "k3")])]
    assert unmapped_report(orders, {}) == [
        UnmappedSku(SHOP, "", "missing_seller_sku", "Product k3", "k3", 1, ["o1"]),
    ]


def test_unmapped_report_counts_every_waiting_order_but_samples_only_a_few() -> None:
    orders = [make_order(f"o{i}", [("RED-L", "k1")]) for i in range(7)]
    assert unmapped_report(orders, {}, sample=3) == [
        UnmappedSku(SHOP, "RED-L", "unmapped", "Product k1", "k1", 7, ["o0", "o1", "o2"]),
    ]


def test_an_order_with_two_units_of_a_sku_waits_once() -> None:
    orders = [make_order("o1", [("RED-L", "k1"), ("RED-L", "k1")])]
    assert unmapped_report(orders, {}) == [
        UnmappedSku(SHOP, "RED-L", "unmapped", "Product k1", "k1", 1, ["o1"]),
    ]


def test_orders_past_the_sample_with_two_units_of_a_sku_wait_once_each() -> None:
    orders = [make_order(f"o{i}", [("RED-L", "k1"), ("RED-L", "k1")]) for i in range(7)]
    assert unmapped_report(orders, {}) == [
        UnmappedSku(SHOP, "RED-L", "unmapped", "Product k1", "k1", 7, ["o0", "o1", "o2", "o3", "o4"]),
    ]


def test_unmapped_report_ties_sort_by_shop_then_seller_sku() -> None:
    orders = [make_order("o1", [("B", "k2")], shop_id=OTHER), make_order("o2", [("B", "k2")]),
              make_order("o3", [("A", "k1")])]
    assert [(e.shop_id, e.seller_sku) for e in unmapped_report(orders, {})] == [(SHOP, "A"), (SHOP, "B"), (OTHER, "B")]


def test_unmapped_report_for_one_shop_ignores_the_others() -> None:
    orders = [make_order("o1", [("RED-L", "k1")]), make_order("o2", [("RED-L", "k1")], shop_id=OTHER)]
    assert unmapped_report(orders, {}, shop_id=OTHER) == [
        UnmappedSku(OTHER, "RED-L", "unmapped", "Product k1", "k1", 1, ["o2"]),
    ]


def test_a_sku_mapped_in_one_shop_is_still_unmapped_in_another() -> None:
    orders = [make_order("o1", [("RED-L", "k1")]), make_order("o2", [("RED-L", "k1")], shop_id=OTHER)]
    assert unmapped_report(orders, {f"{SHOP}:RED-L": P1}) == [
        UnmappedSku(OTHER, "RED-L", "unmapped", "Product k1", "k1", 1, ["o2"]),
    ]


def test_nothing_waits_when_every_line_is_mapped() -> None:
    assert unmapped_report([make_order("o1", [("RED-L", "k1")])], {f"{SHOP}:RED-L": P1}) == []


# ---- preview_change ----------------------------------------------------------------------------------------------
def test_preview_of_a_new_mapping_reemits_every_open_order_with_the_sku() -> None:
    affected = [make_order("o1", [("RED-L", "k1")]), make_order("o2", [("RED-L", "k1"), ("BLUE-M", "k2")])]
    assert preview_change(affected, {}, SHOP, "RED-L", "P-1") == ChangePreview(f"{SHOP}:RED-L", 2, 2)


def test_preview_of_an_unchanged_product_code_reemits_nothing() -> None:
    affected = [make_order("o1", [("RED-L", "k1")])]
    assert preview_change(affected, {f"{SHOP}:RED-L": P1}, SHOP, "RED-L", "P-1") == ChangePreview(f"{SHOP}:RED-L", 1, 0)


def test_preview_of_a_new_product_code_reemits_the_orders() -> None:
    affected = [make_order("o1", [("RED-L", "k1")])]
    assert preview_change(affected, {f"{SHOP}:RED-L": P1}, SHOP, "RED-L", "P-9") == ChangePreview(f"{SHOP}:RED-L", 1, 1)


@pytest.mark.parametrize(("mappings", "would_reemit"), [({f"{SHOP}:RED-L": P1}, 1), ({}, 0)])
def test_preview_of_a_delete_reemits_only_if_the_mapping_existed(mappings: dict[str, Mapping],
                                                                  would_reemit: int) -> None:
    affected = [make_order("o1", [("RED-L", "k1")])]
    assert preview_change(affected, mappings, SHOP, "RED-L", None) == ChangePreview(f"{SHOP}:RED-L", 1, would_reemit)


def test_preview_without_open_orders_reemits_nothing() -> None:
    assert preview_change([], {}, SHOP, "RED-L", "P-1") == ChangePreview(f"{SHOP}:RED-L", 0, 0)


def test_preview_leaves_the_mapping_table_untouched() -> None:
    mappings = {f"{SHOP}:RED-L": P1}
    preview_change([make_order("o1", [("RED-L", "k1")])], mappings, SHOP, "RED-L", None)
    assert mappings == {f"{SHOP}:RED-L": P1}


# ---- next_mapping and mappings_of_shop ---------------------------------------------------------------------------
def test_a_new_mapping_starts_at_version_1() -> None:
    assert next_mapping({}, f"{SHOP}:RED-L", "P-1", "2026-03-01T00:00:00Z", "ann") == \
        Mapping("P-1", "2026-03-01T00:00:00Z", "ann", 1)


def test_a_replaced_mapping_gets_the_next_version() -> None:
    assert next_mapping({f"{SHOP}:RED-L": P2}, f"{SHOP}:RED-L", "P-3", "2026-03-01T00:00:00Z", "ann") == \
        Mapping("P-3", "2026-03-01T00:00:00Z", "ann", 5)


def test_mappings_of_shop_lists_one_shop_sorted_by_key() -> None:
    mappings = {f"{SHOP}:RED-L": P1, f"{OTHER}:A": P2, f"{SHOP}:BLUE-M": P2, f"{SHOP}:a:b": P1}
    assert mappings_of_shop(mappings, SHOP) == [(f"{SHOP}:BLUE-M", P2), (f"{SHOP}:RED-L", P1), (f"{SHOP}:a:b", P1)]


def test_mappings_of_no_shop_lists_them_all() -> None:
    mappings = {f"{SHOP}:RED-L": P1, f"{OTHER}:A": P2}
    assert mappings_of_shop(mappings) == [(f"{SHOP}:RED-L", P1), (f"{OTHER}:A", P2)]

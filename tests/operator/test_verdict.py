"""Explain's verdicts, one per situation a seller asks about."""

from __future__ import annotations

import pytest

from shared.stores.model import LINKED, StoreRecord
from shopsync.operator.verdict import explain

SHOP = "7494049642642441621"
STORES = {SHOP: StoreRecord(nickname="Main store", status=LINKED, shop_id=SHOP, warehouse_ids=["1"],
                            warehouse_names=["LA Warehouse"])}


def entry(kind: str, **detail: object) -> dict:
    return {"shop_id": SHOP, "order_id": "o1", "at": "2026-11-25T10:00:00Z", "kind": kind, "detail": detail}


WEBHOOK = entry("webhook", status="AWAITING_SHIPMENT", event="tiktok.shop.order_status_change", notification_id="n")


@pytest.mark.parametrize(("reason", "expected"), [
    ("warehouse:7012:not_linked", "warehouse 7012 is not linked for store Main store (linked: LA Warehouse)"),
    ("status:ON_HOLD", "ON_HOLD"),
    ("status:CANCELLED", "status is CANCELLED"),
    ("shipping_type:TIKTOK", "TikTok ships this order"),
    ("fulfillment_type:FULFILLMENT_BY_TIKTOK", "fulfilled by TikTok"),
    ("store:auto_sync_off", f"shopsync stores set {SHOP} --auto-sync-orders on"),
    ("store:deauthorized", "link it again"),
    ("store:not_linked", "shopsync stores link"),
])
def test_each_skip_reason_has_a_plain_verdict(reason: str, expected: str) -> None:
    text = explain("o1", [WEBHOOK, entry("skipped", reasons=[reason])], STORES)
    assert text.startswith("skipped: ") and expected in text


def test_unmapped_line_names_the_command() -> None:
    lines = [{"seller_sku": "RED-L", "sku_id": "k", "product_name": "Shirt", "mapping_status": "unmapped",
              "product_code": None}]
    text = explain("o1", [WEBHOOK, entry("accepted"), entry("enriched", revision=1, mapping_state="incomplete",
                                                             lines=lines)], STORES)
    assert f"waiting on mapping for seller SKU RED-L: run `shopsync mappings set {SHOP} RED-L PRODUCT_CODE`" in text


def test_missing_seller_sku_says_fix_it_on_tiktok() -> None:
    lines = [{"seller_sku": "", "sku_id": "k9", "product_name": "Red Shirt", "mapping_status": "missing_seller_sku",
              "product_code": None}]
    text = explain("o1", [WEBHOOK, entry("accepted"), entry("enriched", revision=1, mapping_state="incomplete",
                                                             lines=lines)], STORES)
    assert 'seller SKU empty on TikTok for product "Red Shirt"' in text


def test_complete_withdrawn_never_seen_and_dead_letter() -> None:
    complete = explain("o1", [WEBHOOK, entry("accepted"), entry("enriched", revision=3, mapping_state="complete",
                                                                 lines=[])], STORES)
    assert complete.startswith("delivered to the OMS") and "revision 3" in complete
    assert explain("o1", [WEBHOOK, entry("accepted"), entry("withdrawn", reason="status:CANCELLED")],
                   STORES).startswith("withdrawn (status:CANCELLED)")
    assert explain("o1", [], STORES).startswith("never seen") and "shopsync sync" in explain("o1", [], STORES)
    assert "dlq redrive" in explain("o1", [WEBHOOK, entry("dead_letter", reason="order_not_found")], STORES)


@pytest.mark.parametrize(("entries", "expected"), [
    ([entry("shipment", carrier="usps", tracking_number="T1")],
     "the OMS shipped it (usps T1) but store sync has not reported yet"),
    ([entry("shipment", carrier="usps", tracking_number="T1"),
      entry("shipment_sync", status="applied", endpoint="mark_package_shipped", tracking_number="T1")],
     "tracking number T1 is on TikTok (with mark_package_shipped)"),
    ([entry("shipment_sync", status="failed", reason="shipment:unknown_carrier", detail="valid: USPS, UPS")],
     "NOT sent to TikTok: shipment:unknown_carrier — valid: USPS, UPS"),
])
def test_the_shipment_back_to_tiktok_has_its_own_verdict(entries: list[dict], expected: str) -> None:
    text = explain("o1", [WEBHOOK, entry("accepted"), *entries], STORES)
    assert text.startswith("accepted") and f"Shipment: {expected}" in text


def test_no_shipment_no_shipment_verdict() -> None:
    assert "Shipment:" not in explain("o1", [WEBHOOK, entry("accepted")], STORES)

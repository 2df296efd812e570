"""Product and inventory webhooks are ordered by TikTok's `update_time`, never by arrival; type 5 never sets a
status (no broker, no sandbox: the feed runs over fakes)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, Counter

from services.store_sync.catalog import Catalog, CatalogKeeper
from services.store_sync.event_order import NewestActed, is_stale
from services.store_sync.feeds import ProductWebhookFeed
from services.store_sync.product_events import parse_product_event
from shared.settings import load_settings
from shared.stores.model import StoreRecord
from tests.fakes import FakeTikTok, FixedTokens, MemoryProducer, RecordingInventory, store_table

SHOP, OTHER_SHOP = "7494049642642441621", "7494049642642441622"
PRODUCT = "1729592969700000001"
AUDIT_EVENTS = ("PRODUCT_FIRST_PASS_REVIEW", "PRODUCT_STATUS_CHANGED", "PRODUCT_AUDIT_FAILURE")


# ---- the rule ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("update_times", "decisions"), [
    ((100, 200), "AA"),
    ((200, 100), "AS"),  # a late retry of an older event
    ((100, 200, 100), "AAS"),  # ON_HOLD-like, newer, then the older one's retry
    ((200, 200), "AA"),  # equal proves nothing: act (re-read)
    ((200, None, 100), "AAS"),  # missing update_time: act, and it does not move the mark
    ((None, 100), "AA"),
    ((300, 100, 200), "ASS"),
    # every order of three distinct times
    ((1, 2, 3), "AAA"), ((1, 3, 2), "AAS"), ((2, 1, 3), "ASA"),
    ((2, 3, 1), "AAS"), ((3, 1, 2), "ASS"), ((3, 2, 1), "ASS"),
])
def test_an_event_older_than_the_newest_acted_on_is_stale(update_times: tuple[int | None, ...],
                                                          decisions: str) -> None:
    acted = NewestActed()
    seen = ""
    for update_time in update_times:
        stale = acted.is_stale("k", update_time)
        seen += "S" if stale else "A"
        if not stale:
            acted.acted("k", update_time)
    assert seen == decisions
    assert acted.get("k") == max(t for t in update_times if t is not None)


@pytest.mark.parametrize(("newest", "update_time", "stale"), [
    (None, 5, False), (None, None, False), (5, None, False), (5, 5, False), (5, 4, True), (5, 6, False)])
def test_stale_means_strictly_older(newest: int | None, update_time: int | None, stale: bool) -> None:
    assert is_stale(newest, update_time) is stale


# ---- the feed over fakes -----------------------------------------------------------------------------------
def body(kind: int, update_time: int | None, *, shop: str = SHOP, product: str = PRODUCT, sku: str | None = None,
         status: str | None = None) -> bytes:
    data: dict[str, Any] = {"product_id": int(product) if kind in (5, 16) else product}
    if update_time is not None:
        data["update_time"] = update_time
    if sku is not None:
        data["sku_id"] = sku
    if status is not None:
        data["status"] = status
    return orjson.dumps({"type": kind, "tts_notification_id": "1", "shop_id": shop, "timestamp": 1, "data": data})


def feed(tiktok: FakeTikTok) -> tuple[ProductWebhookFeed, Catalog, RecordingInventory, MemoryProducer,
                                      CollectorRegistry]:
    settings = load_settings(shopsync_sync_max_attempts=2, shopsync_sync_retry_base_s=0.01)
    table = store_table(*(StoreRecord("Store", "linked", shop_id=shop) for shop in (SHOP, OTHER_SHOP)))
    catalog, producer, registry = Catalog(), MemoryProducer(), CollectorRegistry()
    keeper = CatalogKeeper(catalog, tiktok, FixedTokens(), producer, settings)  # type: ignore[arg-type]  # fakes
    inventory = RecordingInventory(catalog)
    stale = Counter("webhooks_stale", "stale", ["type"], registry=registry)
    return (ProductWebhookFeed(None, table, keeper, inventory, settings, asyncio.Event(), stale),  # type: ignore[arg-type]  # fakes
            catalog, inventory, producer, registry)


def stale_count(registry: CollectorRegistry, kind: int) -> float:
    return registry.get_sample_value("webhooks_stale_total", {"type": str(kind)}) or 0.0


@pytest.mark.parametrize(("bodies", "reads", "stale"), [
    ([body(5, 200), body(5, 100)], 1, {5: 1}),
    ([body(5, 100), body(15, 200), body(5, 100)], 2, {5: 1}),  # 5, 15 and 16 share the product's mark
    ([body(15, 300), body(16, 100), body(5, 200)], 1, {16: 1, 5: 1}),
    ([body(5, 200), body(15, 200)], 2, {}),  # equal: re-read
    ([body(5, 200), body(16, None)], 2, {}),  # missing: re-read
    ([body(5, 200), body(5, 100, shop=OTHER_SHOP)], 2, {}),  # another shop's product
    ([body(5, 200), body(5, 100, product="1729592969700000002")], 2, {}),  # another product
])
async def test_stale_product_webhooks_are_counted_and_make_no_call(bodies: list[bytes], reads: int,
                                                                   stale: dict[int, int]) -> None:
    tiktok = FakeTikTok()
    product_feed, _, _, _, registry = feed(tiktok)
    for value in bodies:
        await product_feed.act_on(value)
    assert len(tiktok.product_reads) == reads
    assert {kind: stale_count(registry, kind) for kind in (5, 15, 16, 27)} == {
        kind: float(stale.get(kind, 0)) for kind in (5, 15, 16, 27)}


async def test_inventory_webhooks_are_ordered_per_sku() -> None:
    tiktok = FakeTikTok()
    product_feed, _, inventory, _, registry = feed(tiktok)
    await product_feed.act_on(body(5, 50))  # puts RED-S (sku PRODUCT01) in the catalog
    sku_a, sku_b = f"{PRODUCT}01", f"{PRODUCT}02"
    for value in (body(27, 200, sku=sku_a), body(27, 100, sku=sku_a), body(27, 100, sku=sku_b)):
        await product_feed.act_on(value)
    assert [r for r in inventory.rechecks if r[2] == "inventory_webhook"] == [(SHOP, "RED-S", "inventory_webhook")]
    assert stale_count(registry, 27) == 1.0
    assert len(tiktok.product_reads) == 2  # the product, then sku B (not in the catalog); the stale 27 read nothing


async def test_an_event_whose_reread_failed_does_not_make_older_ones_stale() -> None:
    tiktok = FakeTikTok(product_failures=1)
    product_feed, _, _, _, registry = feed(tiktok)
    await product_feed.act_on(body(5, 200))  # TikTok refuses the read: nothing acted on
    await product_feed.act_on(body(5, 100))
    assert len(tiktok.product_reads) == 2 and stale_count(registry, 5) == 0.0


@pytest.mark.parametrize("audit", AUDIT_EVENTS)
@pytest.mark.parametrize("api_status", ["ACTIVATE", "FAILED", "SELLER_DEACTIVATED"])
async def test_a_type_5_audit_value_is_never_stored_as_a_status(audit: str, api_status: str) -> None:
    assert not hasattr(parse_product_event(body(5, 1, status=audit)), "status")
    tiktok = FakeTikTok(product_status=api_status)
    product_feed, catalog, inventory, producer, _ = feed(tiktok)
    await product_feed.act_on(body(5, 1, status=audit))
    entry = catalog.get(SHOP, "RED-S")
    assert entry is not None and [s.product_status for s in entry.skus] == [api_status]
    assert tiktok.product_reads == [(SHOP, PRODUCT)]
    assert not any(audit.encode() in (v or b"") for v in producer.values)  # nor published on tiktok.catalog
    assert inventory.rechecks == [(SHOP, "RED-S", "catalog_change")]

"""A store whose tokens do not decrypt hurts only that store: it is marked `needs_relink`, its orders are skipped
with that reason, every other shop keeps flowing; during a key rotation (`new,old`) stores under both keys work.
Against the real broker: the worker with a scripted TikTok, and the whole ingest with the sandbox and OAuth."""

from __future__ import annotations

import pytest

from services.order_ingest.decide import store_reasons
from shared.stores.crypto import KEY_MISMATCH, TokenCipher, generate_key
from shared.stores.model import DEAUTHORIZED, LINKED, NEEDS_RELINK, StoreRecord
from shared.topics import DLQ, ORDERS_INGESTED, ORDERS_SKIPPED
from tests.fakes import linked_store
from tests.ingest_harness import Harness, write_store
from tests.order_ingest.conftest import SHOP_A, SHOP_B, RigFactory
from tests.sandbox import MY_SHOP, US_SHOP
from tests.topicview import TopicView, everything
from tests.waiting import eventually

OLD, NEW = generate_key(), generate_key()


def order_ids(view: TopicView) -> set[str]:
    return {v["order_id"] for v in view.values()}


@pytest.mark.parametrize(("status", "reasons"), [(NEEDS_RELINK, ["store:needs_relink"]),
                                                 (DEAUTHORIZED, ["store:deauthorized"]), (LINKED, [])])
def test_a_store_marked_needs_relink_takes_no_orders(status: str, reasons: list[str]) -> None:
    assert store_reasons(linked_store(SHOP_A, TokenCipher(NEW), status=status)) == reasons


async def test_a_store_encrypted_with_another_key_needs_relink_and_the_other_shop_keeps_flowing(
        make_rig: RigFactory) -> None:
    rig = await make_rig(NEW, {SHOP_A: OLD, SHOP_B: NEW})
    rig.start()
    await rig.push(SHOP_A, "a1")
    await rig.push(SHOP_B, "b1")
    async with TopicView(rig.settings, ORDERS_SKIPPED) as skipped:
        await skipped.until(lambda rs: len(rs) == 1)
        assert [(v["order_id"], v["reasons"]) for v in skipped.values()] == [("a1", ["store:needs_relink"])]
    stores = rig.owner.table.stores
    assert (stores[SHOP_A].status, stores[SHOP_A].status_reason) == (NEEDS_RELINK, KEY_MISMATCH)
    assert [w.shop_id for w in rig.owner.writer.written] == [SHOP_A]  # nothing written for the healthy store
    calls_after_mark = len(rig.tiktok.order_calls)
    last = [await rig.push(shop, order) for shop, order in ((SHOP_A, "a2"), (SHOP_B, "b2"))][-1]
    await rig.until_committed(last + 1)  # the bad store's records are finished too: no restart into them
    async with TopicView(rig.settings, ORDERS_INGESTED) as ingested:
        await ingested.until(lambda rs: len(rs) == 2)
        assert order_ids(ingested) == {"b1", "b2"}
    skips = {v["order_id"]: v["reasons"] for v in await everything(rig.settings, ORDERS_SKIPPED)}
    assert skips == {"a1": ["store:needs_relink"], "a2": ["store:needs_relink"]}
    assert [shop for shop, _ in rig.tiktok.order_calls[calls_after_mark:]] == [SHOP_B]  # no call for the marked store
    assert await everything(rig.settings, DLQ) == []


async def test_during_a_key_rotation_stores_under_the_old_and_the_new_key_are_ingested(make_rig: RigFactory) -> None:
    rig = await make_rig(f"{NEW},{OLD}", {SHOP_A: OLD, SHOP_B: NEW})
    rig.start()
    await rig.push(SHOP_A, "a1")
    last = await rig.push(SHOP_B, "b1")
    await rig.until_committed(last + 1)
    async with TopicView(rig.settings, ORDERS_INGESTED) as ingested:
        await ingested.until(lambda rs: len(rs) == 2)
        assert order_ids(ingested) == {"a1", "b1"}
    assert await everything(rig.settings, ORDERS_SKIPPED) == []


async def until_status(harness: Harness, shop_id: str, status: str) -> StoreRecord:
    async def in_status() -> StoreRecord | None:
        store = (await harness.stores()).stores.get(shop_id)
        return store if store is not None and store.status == status else None

    return await eventually(in_status, within=30, every=0.1, what=f"store {shop_id} {status}")


async def test_the_ingest_skips_the_store_whose_key_changed_keeps_the_others_and_a_relink_heals_it(
        harness: Harness) -> None:
    assert (await harness.link("US store", "", shop_id=US_SHOP)).status_code == 200
    assert (await harness.link("MY store", "", shop_id=MY_SHOP)).status_code == 200
    bad = await until_status(harness, MY_SHOP, LINKED)
    other = TokenCipher(generate_key())  # as if this record was written under a key since replaced
    bad.access_token_enc, bad.refresh_token_enc = other.encrypt("TTP_a"), other.encrypt("TTP_r")
    await write_store(harness.settings, bad)
    await harness.start_ingest()
    us, my = await harness.create_order(shop_id=US_SHOP), await harness.create_order(shop_id=MY_SHOP)
    async with TopicView(harness.settings, ORDERS_SKIPPED) as skipped:
        await skipped.until(lambda rs: len(rs) >= 1)
        assert [(v["order_id"], v["reasons"]) for v in skipped.values()] == [(my["id"], ["store:needs_relink"])]
    marked = await until_status(harness, MY_SHOP, NEEDS_RELINK)
    assert marked.status_reason == KEY_MISMATCH
    later = await harness.create_order(shop_id=US_SHOP)
    async with TopicView(harness.settings, ORDERS_INGESTED) as ingested:
        await ingested.until(lambda rs: {us["id"], later["id"]} <= order_ids(ingested))
        assert harness.task is not None and not harness.task.done()  # the process never stopped
        assert (await harness.link("MY store", "", shop_id=MY_SHOP)).status_code == 200  # the seller relinks
        relinked = await until_status(harness, MY_SHOP, LINKED)
        assert relinked.status_reason == ""
        healed = await harness.create_order(shop_id=MY_SHOP)
        await ingested.until(lambda rs: healed["id"] in order_ids(ingested))

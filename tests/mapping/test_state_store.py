"""The local state store: a restart restores from it and reads only the topics' tails; a mapping changed while the
service was down re-emits exactly the orders it affects; an unusable store falls back to the full restore."""

from __future__ import annotations

import contextlib
import gc
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.mapping.service import MappingService, _changed_mappings, _within
from services.mapping.state import OrderState
from services.mapping.store import StateStore
from services.mapping.wiring import build_app
from shared.kafka import create_producer
from shared.mappings import Mapping, mapping_key
from shared.settings import Settings
from shared.topics import MAPPINGS, ORDERS_ENRICHED, ORDERS_INGESTED, topic_name
from tests.mapping_harness import SHOP, make_order, publish
from tests.servers import serve_app
from tests.topicview import everything
from tests.waiting import eventually


@pytest.fixture
def store_settings(mapping_settings: Settings, tmp_path: Path) -> Settings:
    return mapping_settings.model_copy(update={"shopsync_state_dir": tmp_path / "state"})


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[MappingService]:
    """A mapping instance, ready (joined and restored); stopped (cleanly) on exit."""
    app, service = build_app(settings)
    async with serve_app(app):
        await eventually(service.ready.is_set, within=30, what="the mapping service ready")
        yield service


async def enriched_count(settings: Settings, n: int, service: MappingService) -> list[dict[str, Any]]:
    """Every `orders.enriched` value once there are `n` and the service committed its batches."""
    async def settled() -> bool:
        return len(await everything(settings, ORDERS_ENRICHED)) >= n

    await eventually(settled, within=30, what=f"{n} enrichments")
    return await everything(settings, ORDERS_ENRICHED)


async def write_mapping(settings: Settings, seller_sku: str, code: str) -> None:
    """A mapping written straight to the topic (as another instance's API would, while this one is down)."""
    producer = create_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(topic_name(MAPPINGS, settings.shopsync_topic_prefix),
                                     orjson.dumps(Mapping(code, "", "test", 1).to_dict()),
                                     key=mapping_key(SHOP, seller_sku).encode())
    finally:
        await producer.stop()


def corrupt(path: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"not a database" * 100)


def revisions(values: list[dict[str, Any]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for v in values:
        out.setdefault(f"{v['shop_id']}:{v['order_id']}", []).append(v["revision"])
    return out


async def test_warm_restart_restores_from_the_store_and_reads_only_the_tail(store_settings: Settings) -> None:
    await publish(store_settings, *[make_order(f"o{i}", [("RED-L", "k1")]) for i in range(20)])
    async with running(store_settings) as first:
        await enriched_count(store_settings, 20, first)
    assert first.restore_reads == {ORDERS_INGESTED: 20, ORDERS_ENRICHED: 0}  # no store yet: the full restore
    # while down: one new order and a new version of another
    await publish(store_settings, make_order("new", [("RED-L", "k1")]),
                  make_order("o3", [("RED-L", "k1"), ("BLUE-M", "k2")], version=2))
    async with running(store_settings) as second:
        assert second.restore_reads == {ORDERS_INGESTED: 2, ORDERS_ENRICHED: 0}  # the tails only
        assert len(second.state.orders) == 21 and second.state.versions[f"{SHOP}:o3"] == 2
        values = await enriched_count(store_settings, 22, second)
        assert [o.key for o in second.state.affected(SHOP, "BLUE-M")] == [f"{SHOP}:o3"]
    assert revisions(values)[f"{SHOP}:o3"] == [1, 2] and revisions(values)[f"{SHOP}:new"] == [1]


async def test_mapping_changed_while_down_reemits_exactly_the_affected_orders(store_settings: Settings) -> None:
    red = [make_order(f"r{i}", [("RED-L", "k1")]) for i in range(3)]
    blue = [make_order(f"b{i}", [("BLUE-M", "k2")]) for i in range(7)]
    await publish(store_settings, *red, *blue)
    async with running(store_settings) as first:
        await enriched_count(store_settings, 10, first)
    await write_mapping(store_settings, "RED-L", "P-9")
    async with running(store_settings) as second:
        assert second.restore_reads == {ORDERS_INGESTED: 0, ORDERS_ENRICHED: 0}
        values = await everything(store_settings, ORDERS_ENRICHED)  # the restore flushed before ready
    changed = [v for v in values if v["revision"] == 2]
    assert sorted(f"{v['shop_id']}:{v['order_id']}" for v in changed) == sorted(o.key for o in red)
    assert all(v["cause"] == "mapping_change" and v["lines"][0]["product_code"] == "P-9" for v in changed)
    assert len(values) == 13


async def test_a_corrupt_store_falls_back_to_the_full_restore(store_settings: Settings) -> None:
    await publish(store_settings, *[make_order(f"o{i}", [("RED-L", "k1")]) for i in range(5)])
    async with running(store_settings) as first:
        await enriched_count(store_settings, 5, first)
    corrupt(next(store_settings.shopsync_state_dir.rglob("mapping.sqlite3")))
    async with running(store_settings) as second:
        assert second.restore_reads == {ORDERS_INGESTED: 5, ORDERS_ENRICHED: 5}
        assert len(second.state.orders) == 5
    assert len(await everything(store_settings, ORDERS_ENRICHED)) == 5  # nothing re-emitted


async def test_a_checkpoint_outside_the_topic_falls_back_to_the_full_restore(store_settings: Settings) -> None:
    """A checkpoint past the topic's end (the topic was recreated) or before its log start (retention) is not
    trusted: the partition is restored from the topics and the store rewritten."""
    await publish(store_settings, *[make_order(f"o{i}", [("RED-L", "k1")]) for i in range(5)])
    async with running(store_settings) as first:
        await enriched_count(store_settings, 5, first)
    path = next(store_settings.shopsync_state_dir.rglob("mapping.sqlite3"))
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE checkpoints SET ingested = ingested + 1000")
    async with running(store_settings) as second:
        assert second.restore_reads[ORDERS_INGESTED] == 5 and len(second.state.orders) == 5
    async with running(store_settings) as third:  # the rewritten store is trusted again
        assert third.restore_reads == {ORDERS_INGESTED: 0, ORDERS_ENRICHED: 0}
        assert len(third.state.orders) == 5


@pytest.mark.parametrize(("offset", "bounds", "trusted"), [
    (10, (0, 20), True), (0, (0, 0), True), (20, (0, 20), True),
    (5, (6, 20), False),  # older than the retention
    (21, (0, 20), False),  # past the end: a new topic under the same name
    (0, None, False),  # no such partition
])
def test_a_checkpoint_is_trusted_only_within_the_topic(offset: int, bounds: tuple[int, int] | None,
                                                       trusted: bool) -> None:
    assert _within(offset, bounds) is trusted


def test_changed_mappings_include_new_changed_and_forgotten_keys() -> None:
    seen = {"s:same": 1, "s:changed": 2, "s:compacted-away": 3}
    table = {"s:same": 1, "s:changed": 7, "s:new": 9}
    assert _changed_mappings(seen, table) == {"s:changed", "s:compacted-away", "s:new"}


async def test_a_partition_that_moved_away_and_back_continues_its_revisions(store_settings: Settings,
                                                                            tmp_path: Path) -> None:
    """Each instance has its own store: what the other did while it owned a partition comes from the topics."""
    other = store_settings.model_copy(update={"shopsync_state_dir": tmp_path / "other"})
    orders = [make_order(f"o{i}", [("RED-L", "k1")]) for i in range(12)]
    await publish(store_settings, *orders)
    async with running(store_settings) as first:
        await enriched_count(store_settings, 12, first)
        async with running(other) as second:
            await eventually(lambda: first.consumer.assignment() and second.consumer.assignment()
                             and len(first.state.held) + len(second.state.held) == 3,
                             within=30, what="both instances owning partitions")
            moved = second.state.held
            await write_mapping(store_settings, "RED-L", "P-1")  # each re-emits its share

            async def all_at_revision_2() -> bool:  # read from the topic: a slow machine may rebalance once more,
                latest = revisions(await everything(store_settings, ORDERS_ENRICHED))  # moving the shares again
                return all(latest.get(o.key, [0])[-1] == 2 for o in orders)

            await eventually(all_at_revision_2, within=30, every=0.25, what="every order through the change")
        await eventually(lambda: len(first.state.held) == 3 and first.restored.is_set(), within=30,
                         what="the partitions back")
        await write_mapping(store_settings, "RED-L", "P-2")
        await eventually(lambda: all(first.state.emitted[o.key].revision == 3 for o in orders), within=30,
                         what="every order at revision 3")
        assert moved
    assert revisions(await everything(store_settings, ORDERS_ENRICHED)) == {o.key: [1, 2, 3] for o in orders}


def test_instances_sharing_a_state_directory_never_share_a_store_file(tmp_path: Path) -> None:
    first = StateStore.open_own(tmp_path / "group", "mapping")
    second = StateStore.open_own(tmp_path / "group", "mapping")
    assert (first.path, second.path) == (tmp_path / "group" / "mapping.sqlite3",
                                         tmp_path / "group" / "mapping.1.sqlite3")
    first.close()
    third = StateStore.open_own(tmp_path / "group", "mapping")  # the file the closed one held is free again
    assert third.path == tmp_path / "group" / "mapping.sqlite3"
    second.close()
    third.close()


def test_a_state_directory_that_cannot_be_created_gives_an_in_memory_store(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    store = StateStore.open_own(tmp_path / "file" / "group", "mapping")
    assert store.path is None
    store.close()


def test_an_order_put_with_its_consumed_value_is_stored_as_that_value() -> None:
    """The consumed bytes are the stored document (the order is not encoded again); a put without them (a restore)
    stores the order encoded."""
    state = OrderState()
    order = make_order("o1", [("RED-L", "k1")])
    consumed = b" " + orjson.dumps(order.to_dict(), option=orjson.OPT_INDENT_2)  # decodes to the same order
    state.put(order, 0, consumed)
    state.save()
    state.store.wait()
    assert state.store.doc(order.key) == (0, consumed) and state.orders[order.key] == order
    newer = make_order("o1", [("RED-L", "k1"), ("BLUE-M", "k2")], version=2)
    state.put(newer, 0)
    state.save()
    state.store.wait()
    assert state.store.doc(order.key) == (0, orjson.dumps(newer.to_dict())) and state.orders[order.key] == newer
    assert [o.key for o in state.affected(SHOP, "BLUE-M")] == [order.key]
    state.store.close()


def test_affected_finds_orders_the_writer_has_not_written_yet_by_their_newest_version() -> None:
    """Right after a burst the store's writer is behind: `affected` finds the orders it has not written through each
    write's SKU index, judges every order by its newest version (written, being written, or not saved yet), and
    returns each once."""
    state = OrderState()
    stored = [make_order("stored", [("RED-L", "k1")]), make_order("stored-gone", [("RED-L", "k1")])]
    for order in stored:
        state.put(order, 0)
    state.save()
    state.store.wait()
    gate = threading.Event()
    state.store._writer.submit(gate.wait)  # the writer is busy: what is saved next stays unwritten
    try:
        state.put(make_order("writing", [("RED-L", "k1"), ("BLUE-M", "k2")]), 0)
        state.put(make_order("writing-gone", [("RED-L", "k1")]), 0)
        state.put(make_order("stored-gone", [("BLUE-M", "k2")], version=2), 0)  # no RED-L any more
        state.save()
        state.put(make_order("writing-gone", [("BLUE-M", "k2")], version=2), 0)  # put, not saved: no RED-L
        state.put(make_order("writing", [("RED-L", "k1")], version=2), 0)
        state.put(make_order("put", [("RED-L", "k1")]), 0)
        state.put(make_order("other-shop", [("RED-L", "k1")], shop_id="s2"), 0)
        found = state.affected(SHOP, "RED-L")
        assert [(o.order_id, o.order_version) for o in found] == [("put", 1), ("stored", 1), ("writing", 2)]
        assert [o.order_id for o in state.affected(SHOP, "BLUE-M")] == ["stored-gone", "writing-gone"]
    finally:
        gate.set()
    state.store.wait()
    assert [o.order_id for o in state.affected(SHOP, "RED-L")] == ["put", "stored", "writing"]
    state.store.close()


async def test_the_restored_state_is_kept_out_of_later_collections(store_settings: Settings) -> None:
    """Once a partition's state is restored it is frozen (`gc.freeze`): no young collection walks it again."""
    await publish(store_settings, make_order("o1", [("RED-L", "k1")]))
    gc.unfreeze()
    async with running(store_settings) as service:
        assert service.restore_reads[ORDERS_INGESTED] == 1 and gc.get_freeze_count() > 0


def test_documents_live_in_a_rowid_table_and_an_older_store_is_replaced(tmp_path: Path) -> None:
    """The ~1 KB documents sit in a rowid table (a WITHOUT ROWID one costs ~3x the CPU per upsert); a store of
    the previous schema is replaced by a new one (its partitions are then restored in full)."""
    path = tmp_path / "mapping.sqlite3"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE meta(name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
    old.execute("INSERT INTO meta VALUES ('schema', '2')")
    old.execute("CREATE TABLE checkpoints(partition INTEGER PRIMARY KEY, ingested INTEGER NOT NULL, "
                "enriched INTEGER NOT NULL)")
    old.execute("INSERT INTO checkpoints VALUES (0, 5, 5)")
    old.commit()
    old.close()
    store = StateStore.open(path)
    assert store.checkpoints([0]) == {}
    assert store.reader.execute("SELECT rowid FROM docs").fetchall() == []  # raises on a WITHOUT ROWID table
    store.close()

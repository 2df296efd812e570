"""`shopsync replay` against the real broker: it selects orders, never versions, and never rewrites history."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from services.mapping.service import MappingService
from shared.envelope import header_map, rfc3339
from shared.kafka import create_consumer, create_producer, read_to_end
from shared.orders import IngestedOrder
from shared.partitioner import murmur2
from shared.settings import Settings
from shared.topics import ORDERS_ENRICHED, ORDERS_INGESTED, TOPICS
from shopsync.cli import cli
from shopsync.operator.replay import Selection, Sent, Stored, Summary, find_shadowed, read_orders, replay, republish
from shopsync.topic_admin import ensure_topics
from tests.mapping_harness import SHOP, WITHDRAWN, MappingHarness, make_order, publish
from tests.waiting import eventually

HOUR_MS = 3600 * 1000
FAST_COMPACTION = {"segment.ms": "100", "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "100"}


# ---- helpers ---------------------------------------------------------------------------------------------------
async def publish_at(settings: Settings, at_ms: int, *orders: IngestedOrder) -> None:
    """Publish orders on `orders.ingested` as the ingest would, with the record timestamp `at_ms`."""
    await publish(settings, *orders, at_ms=at_ms)


async def records_by_key(settings: Settings, topic: str) -> dict[str, list[Any]]:
    """Every record of `topic` now, per key, in offset order."""
    out: dict[str, list[Any]] = {}
    async for r in read_to_end(settings, topic):
        if r.key is not None:
            out.setdefault(r.key.decode(), []).append(r)
    return out


def newest(records: list[Any]) -> dict[str, Any]:
    """The value of a key's last record."""
    value: dict[str, Any] = orjson.loads(records[-1].value)
    return value


async def replay_cli(settings: Settings, *args: str) -> dict[str, Any]:
    """`shopsync replay ... --json` as an operator runs it, against this test's topics."""
    env = {"SHOPSYNC_TOPIC_PREFIX": settings.shopsync_topic_prefix,
           "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers}
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["replay", *args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    summary: dict[str, Any] = orjson.loads("\n".join(lines[lines.index("{"):]))  # log lines may precede it
    return summary


async def enriched_until(mapping: MappingHarness, holds: Callable[[dict[str, dict[str, Any]]], bool]
                         ) -> dict[str, list[Any]]:
    """Wait until the newest `orders.enriched` value per key satisfies `holds` (robust to compaction: it looks at
    the table, not at a record count); then every record per key."""
    async with mapping.enriched() as view:
        await view.until(lambda _: holds(view.latest()))
    return await records_by_key(mapping.settings, ORDERS_ENRICHED)


def caused(latest: dict[str, dict[str, Any]], cause: str, *keys: str) -> bool:
    return all(latest.get(k, {}).get("cause") == cause for k in keys)


def assert_revisions_grow(enriched: dict[str, list[Any]]) -> None:
    for key, records in enriched.items():
        revisions = [orjson.loads(r.value)["revision"] for r in records if r.value is not None]
        assert revisions == sorted(set(revisions)), (key, revisions)


async def cancelled_after_the_window(mapping: MappingHarness) -> tuple[dict[str, str], int]:
    """Three orders accepted at t1; at t2 one is cancelled and one updated. Returns their keys and a time between."""
    now = int(time.time() * 1000)
    t1, t2 = now - 2 * HOUR_MS, now - HOUR_MS
    await mapping.put("RED-L", "P-1")
    await publish_at(mapping.settings, t1, make_order("cancelled", [("RED-L", "k1")]),
                     make_order("kept", [("RED-L", "k1")]), make_order("updated", [("RED-L", "k1")]))
    await publish_at(mapping.settings, t2, make_order("cancelled", [("RED-L", "k1")], 2, WITHDRAWN),
                     make_order("updated", [("RED-L", "k1"), ("BLUE-M", "k2")], 2))
    keys = {name: f"{SHOP}:{name}" for name in ("cancelled", "kept", "updated")}
    await enriched_until(mapping, lambda latest: keys["kept"] in latest
                         and latest.get(keys["cancelled"], {}).get("mapping_state") == "withdrawn"
                         and latest.get(keys["updated"], {}).get("order_version") == 2)
    return keys, (t1 + t2) // 2


def assert_current_state(ingested: dict[str, list[Any]], keys: dict[str, str]) -> None:
    cancelled, kept, updated = (newest(ingested[keys[k]]) for k in ("cancelled", "kept", "updated"))
    assert (cancelled["lifecycle"], cancelled["order_version"]) == ("withdrawn", 2)
    assert (updated["lifecycle"], updated["order_version"], len(updated["lines"])) == ("active", 2, 2)
    assert (kept["lifecycle"], kept["order_version"]) == ("active", 1)


async def fast_compaction(settings: Settings) -> None:
    """Reconfigure this test's (fresh, empty) order topics with a tiny segment.ms / dirty ratio, so the broker's
    cleaner really compacts them."""
    specs = tuple(replace(s, extra_config={**s.extra_config, **FAST_COMPACTION})
                  if s.name in (ORDERS_INGESTED, ORDERS_ENRICHED) else s for s in TOPICS)
    report = await ensure_topics(settings, specs)
    assert not report.problems, report.problems


async def until_compacted(settings: Settings, keys: set[str], within: float = 90.0) -> dict[str, list[Any]]:
    """Keep rolling segments (one filler order per partition, so the newest records leave the active segment)
    until every key in `keys` has a single record left on `orders.ingested`; then every record per key."""
    partitions = settings.shopsync_topic_partitions
    fillers: dict[int, str] = {}
    n = 0
    while len(fillers) < partitions:
        n += 1
        fillers.setdefault((murmur2(f"{SHOP}:filler{n}".encode()) & 0x7FFFFFFF) % partitions, f"filler{n}")
    versions = itertools.count(1)

    async def compacted() -> dict[str, list[Any]] | None:
        version = next(versions)
        await publish(settings, *[make_order(name, [("RED-L", "k1")], version) for name in fillers.values()])
        ingested = await records_by_key(settings, ORDERS_INGESTED)
        return ingested if all(len(ingested.get(key, ())) == 1 for key in keys) else None

    # polled every 0.25 s: the cleaner runs at its own pace, the deadline bounds it
    return await eventually(compacted, within=within, every=0.25, what=f"{len(keys)} keys compacted to one record")


# ---- the time window selects orders, never versions ------------------------------------------------------------
async def test_replay_to_before_a_cancellation_leaves_the_order_withdrawn(mapping: MappingHarness) -> None:
    keys, between = await cancelled_after_the_window(mapping)
    summary = await replay_cli(mapping.settings, "--to", rfc3339(between / 1000), "--force")
    assert sorted(summary["keys"]) == [keys["kept"], keys["updated"]]  # changed before T, still active today
    ingested = await records_by_key(mapping.settings, ORDERS_INGESTED)
    assert_current_state(ingested, keys)
    copies = [r for rs in ingested.values() for r in rs if header_map(r.headers).get("replay_id")]
    assert {r.key.decode() for r in copies} == {keys["kept"], keys["updated"]}
    assert {r.key.decode(): orjson.loads(r.value)["order_version"] for r in copies} == {keys["kept"]: 1,
                                                                                        keys["updated"]: 2}
    enriched = await enriched_until(mapping, lambda latest: caused(latest, "replay", keys["kept"], keys["updated"]))
    assert newest(enriched[keys["cancelled"]])["mapping_state"] == "withdrawn"
    assert newest(enriched[keys["updated"]])["order_version"] == 2
    assert [orjson.loads(r.value)["cause"] for r in enriched[keys["cancelled"]]] == ["order_update"] * 2
    assert_revisions_grow(enriched)


async def test_replay_to_before_a_cancellation_stays_withdrawn_after_compaction(mapping: MappingHarness) -> None:
    await fast_compaction(mapping.settings)
    keys, between = await cancelled_after_the_window(mapping)
    await replay_cli(mapping.settings, "--to", rfc3339(between / 1000), "--force")
    await enriched_until(mapping, lambda latest: caused(latest, "replay", keys["kept"], keys["updated"]))
    ingested = await until_compacted(mapping.settings, set(keys.values()))
    assert_current_state(ingested, keys)
    # the fillers kept arriving until the cleaner ran: a takeover comes after the old owner's last output (two
    # owners of one partition at once would both write the next revision of the newest filler)
    await enriched_until(mapping, lambda latest: all(
        latest.get(key, {}).get("order_version") == newest(records)["order_version"]
        for key, records in ingested.items() if records[-1].value is not None))
    # a mapping instance taking the partitions over now restores the compacted table and must not revive it
    fresh = MappingService(mapping.settings, producer=create_producer(mapping.settings),
                           consumer=create_consumer(mapping.settings, "unused"))
    await fresh.table.load(mapping.settings)
    await fresh.producer.start()
    try:
        await fresh.restore(set(range(mapping.settings.shopsync_topic_partitions)))
    finally:
        await fresh.producer.stop()
    assert keys["cancelled"] not in fresh.state.orders and fresh.state.versions[keys["cancelled"]] == 2
    enriched = await records_by_key(mapping.settings, ORDERS_ENRICHED)
    assert newest(enriched[keys["cancelled"]])["mapping_state"] == "withdrawn"
    assert_revisions_grow(enriched)


async def test_dry_run_lists_exactly_the_keys_a_real_run_publishes(mapping: MappingHarness) -> None:
    now = int(time.time() * 1000)
    await mapping.put("RED-L", "P-1")
    await publish_at(mapping.settings, now - 3 * HOUR_MS, make_order("old", [("RED-L", "k1")]))
    await publish_at(mapping.settings, now - 2 * HOUR_MS, make_order("a", [("RED-L", "k1")]),
                     make_order("b", [("BLUE-M", "k2")]), make_order("gone", [("RED-L", "k1")]),
                     make_order("moved", [("RED-L", "k1")]))
    await publish_at(mapping.settings, now - HOUR_MS, make_order("gone", [("RED-L", "k1")], 2, WITHDRAWN),
                     make_order("moved", [("BLUE-M", "k2")], 2), make_order("late", [("RED-L", "k1")]))
    await enriched_until(mapping, lambda latest: f"{SHOP}:late" in latest and f"{SHOP}:old" in latest
                         and latest.get(f"{SHOP}:gone", {}).get("mapping_state") == "withdrawn"
                         and latest.get(f"{SHOP}:moved", {}).get("order_version") == 2)
    window = ["--from", rfc3339((now - 150 * 60_000) / 1000), "--to", rfc3339((now - 90 * 60_000) / 1000)]
    unforced_dry = await replay_cli(mapping.settings, *window, "--dry-run")
    assert (unforced_dry["selected"], unforced_dry["replayed"], unforced_dry["keys"]) == (3, 0, [])
    dry = await replay_cli(mapping.settings, *window, "--force", "--dry-run")
    real = await replay_cli(mapping.settings, *window, "--force")
    assert dry["keys"] == real["keys"] == [f"{SHOP}:{k}" for k in ("a", "b", "moved")]
    assert dry["replayed"] == real["replayed"] == 3 and real["restored"] == 0
    ingested = await records_by_key(mapping.settings, ORDERS_INGESTED)
    published = {r.key.decode(): r for rs in ingested.values() for r in rs
                 if header_map(r.headers).get("replay_id") == real["replay_id"]}
    assert sorted(published) == real["keys"]
    assert orjson.loads(published[f"{SHOP}:moved"].value)["order_version"] == 2
    assert {r.timestamp for r in published.values()} == {now - 2 * HOUR_MS, now - HOUR_MS}  # original times kept


# ---- a change that lands while a replay publishes --------------------------------------------------------------
async def test_a_cancellation_landing_during_a_replay_is_restored_as_newest(mapping: MappingHarness) -> None:
    await publish(mapping.settings, make_order("o1", [("RED-L", "k1")]))
    snapshot = await read_orders(mapping.settings)
    await publish(mapping.settings, make_order("o1", [("RED-L", "k1")], 2, WITHDRAWN))  # after the read
    key = f"{SHOP}:o1"
    current = snapshot.orders[key].current
    assert current is not None
    summary = Summary(replay_id="r1", dry_run=False)
    await republish(mapping.settings, [current], snapshot.ends, summary)
    assert (summary.replayed, summary.restored, summary.failed) == (1, 1, 0)
    ingested = await records_by_key(mapping.settings, ORDERS_INGESTED)
    assert [orjson.loads(r.value)["lifecycle"] for r in ingested[key]] == ["active", "withdrawn", "active",
                                                                           "withdrawn"]
    enriched = await enriched_until(mapping, lambda latest: latest.get(key, {}).get("mapping_state") == "withdrawn")
    assert [orjson.loads(r.value)["mapping_state"] for r in enriched[key]] == ["incomplete", "withdrawn"]


def _stored(offset: int, version: int, value: bytes = b"v", key: str = "k", partition: int = 0) -> Stored:
    order = replace(make_order("o", [("RED-L", "k1")]), order_version=version)
    return Stored(partition, offset, 0, key, value, (), order)


@pytest.mark.parametrize(("tail", "restored"), [
    ([], None),                                                       # nothing else was written
    ([_stored(10, 2, b"new"), _stored(11, 1)], 10),                   # a newer version before the copy
    ([_stored(10, 1, b"address changed"), _stored(11, 1)], 10),       # same version, other content
    ([_stored(10, 1, b"v"), _stored(11, 1)], None),                   # the same value (another replay's copy)
    ([_stored(10, 0, b"stale"), _stored(11, 1)], None),               # an older version: the copy is newer
    ([_stored(10, 2, b"new"), _stored(11, 1), _stored(12, 3, b"x")], None),  # a write after the copy wins anyway
    ([_stored(10, 2, b"new", key="other"), _stored(11, 1)], None),    # another order
])
def test_find_shadowed_restores_only_what_a_copy_hides(tail: list[Stored], restored: int | None) -> None:
    copy = Sent(_stored(3, 1), partition=0, offset=11)
    found = find_shadowed({"k": copy}, tail)
    assert (found["k"].offset if "k" in found else None) == restored


# ---- selection and counts (moved from test_operator_tools) -----------------------------------------------------
async def test_replay_resends_only_changes_unless_forced_and_dry_run_matches(mapping: MappingHarness) -> None:
    await mapping.put("RED-L", "P-1")
    await publish(mapping.settings, *[make_order(f"o{i}", [("RED-L", "k1")]) for i in range(4)],
                  make_order("u1", [("BLUE-M", "k2")]))
    async with mapping.enriched() as view:
        await view.until(lambda rs: len(rs) == 5)
        dry = await replay(mapping.settings, Selection(), dry_run=True)
        assert (dry.selected, dry.changed, dry.unchanged, dry.replayed) == (5, 0, 5, 0)
        forced_dry = await replay(mapping.settings, Selection(shop_id=SHOP), dry_run=True, force=True)
        forced = await replay(mapping.settings, Selection(shop_id=SHOP), force=True, rate=1000)
        assert forced_dry.replayed == forced.replayed == 5 and forced_dry.keys == forced.keys
        await view.until(lambda rs: len(rs) == 10)
        replayed = view.records[5:]
    assert {header_map(r.headers)["replay_id"] for r in replayed} == {forced.replay_id}
    assert {orjson.loads(r.value)["cause"] for r in replayed} == {"replay"}
    assert {orjson.loads(r.value)["revision"] for r in replayed} == {2}


async def test_replay_selection_by_order_id_incomplete_and_time(mapping: MappingHarness) -> None:
    now = int(time.time() * 1000)
    middle = now - HOUR_MS
    await mapping.put("RED-L", "P-1")
    await publish_at(mapping.settings, middle - 1, make_order("a", [("RED-L", "k1")]),
                     make_order("b", [("BLUE-M", "k2")]))
    await publish_at(mapping.settings, middle, make_order("c", [("BLUE-M", "k2")]))
    await enriched_until(mapping, lambda latest: len(latest) == 3)
    by_id = await replay(mapping.settings, Selection(order_ids=frozenset({"a", "c"})), dry_run=True, force=True)
    incomplete = await replay(mapping.settings, Selection(only_incomplete=True), dry_run=True, force=True)
    recent = await replay(mapping.settings, Selection(from_ms=middle), dry_run=True, force=True)
    older = await replay(mapping.settings, Selection(to_ms=middle), dry_run=True, force=True)
    assert (by_id.selected, incomplete.selected, recent.selected, older.selected) == (2, 2, 1, 2)


def test_replay_cli_rejects_bad_times() -> None:
    result = CliRunner().invoke(cli, ["replay", "--from", "yesterday"])
    assert result.exit_code != 0 and "--from 'yesterday'" in result.output

"""Offsets reset, dead letters, tail and the audit index against the real broker (replay: test_replay.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner

from services.audit.service import create_app as create_audit_app
from services.audit.store import AuditStore
from shared.dlq import send_to_dlq
from shared.kafka import create_consumer, create_producer
from shared.settings import Settings
from shared.topics import DLQ, ORDERS_INGESTED, ORDERS_SKIPPED, TIKTOK_WEBHOOKS, topic_name
from shopsync.cli import cli
from shopsync.operator.dlq import list_dead_letters, redrive
from shopsync.operator.offsets import GroupActive, apply_reset, plan_reset
from tests.mapping_harness import SHOP, make_order
from tests.servers import serve_app
from tests.topicview import TopicView
from tests.waiting import eventually


async def test_offsets_reset_refuses_active_members_then_resets(settings: Settings) -> None:
    producer = create_producer(settings)
    await producer.start()
    topic = topic_name(DLQ, settings.shopsync_topic_prefix)
    for i in range(5):
        await producer.send_and_wait(topic, b"%d" % i, partition=0)
    await producer.stop()
    group = f"{settings.shopsync_topic_prefix}g"
    consumer = create_consumer(settings, group, DLQ, client_id="busy-member")
    await consumer.start()
    got = 0

    async def all_five() -> bool:
        nonlocal got
        got += sum(len(b) for b in (await consumer.getmany(timeout_ms=200)).values())
        return got >= 5

    await eventually(all_five, within=30, every=0, what="the five records consumed")
    await consumer.commit()
    with pytest.raises(GroupActive, match="busy-member"):
        await plan_reset(settings, group, "earliest", None, None)
    await consumer.stop()
    moves = await plan_reset(settings, group, "earliest", None, None)
    assert [(m.partition, m.old, m.new) for m in moves if m.partition == 0] == [(0, 5, 0)]
    await apply_reset(settings, group, moves)
    again = await plan_reset(settings, group, "latest", None, None)
    assert [(m.old, m.new) for m in again if m.partition == 0] == [(0, 5)]


async def test_dlq_redrive_republishes_once(settings: Settings) -> None:
    producer = create_producer(settings)
    await producer.start()
    source = topic_name(TIKTOK_WEBHOOKS, settings.shopsync_topic_prefix)
    sent = await producer.send_and_wait(source, b'{"bad": true}', key=b"1:2", headers=[("ce_id", b"n1")])

    record = SimpleNamespace(topic=source, partition=sent.partition, offset=sent.offset, key=b"1:2",  # what it reads
                             value=b'{"bad": true}', headers=[("ce_id", b"n1")])
    await send_to_dlq(producer, settings, record, "undecodable_webhook: test", time.time())
    await producer.stop()
    letters = await list_dead_letters(settings)
    assert [(i.letter.reason, i.letter.source_topic, i.redriven) for i in letters] == [
        ("undecodable_webhook: test", source, False)]
    assert await redrive(settings, [i for i in letters if not i.redriven]) == 1
    async with TopicView(settings, TIKTOK_WEBHOOKS) as view:
        await view.until(lambda rs: len(rs) == 2)
        assert view.records[1].key == b"1:2" and dict(view.records[1].headers) == {"ce_id": b"n1"}
    assert [i.redriven for i in await list_dead_letters(settings)] == [True]


async def test_tail_prints_records_as_json(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    producer = create_producer(settings)
    await producer.start()
    await producer.send_and_wait(topic_name(ORDERS_SKIPPED, settings.shopsync_topic_prefix), b'{"a": 1}', key=b"k")
    await producer.stop()
    monkeypatch.setenv("SHOPSYNC_TOPIC_PREFIX", settings.shopsync_topic_prefix)
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["tail", "orders.skipped", "--from-beginning",
                                                               "--max", "1", "--json"])
    assert result.exit_code == 0, result.output
    printed = [orjson.loads(line) for line in result.stdout.splitlines() if line.startswith('{"key":')]
    assert [(r["key"], r["offset"], r["value"]) for r in printed] == [("k", 0, {"a": 1})]  # exactly one, as JSON
    unknown = CliRunner().invoke(cli, ["tail", "orders.nope"])
    assert unknown.exit_code != 0 and "unknown topic" in unknown.output


async def test_audit_indexes_each_step_by_order(settings: Settings, tmp_path: Path) -> None:
    producer = create_producer(settings)
    await producer.start()
    p = settings.shopsync_topic_prefix
    hook = orjson.dumps({"type": 1, "shop_id": SHOP, "timestamp": 1, "tts_notification_id": "n1",
                         "data": {"order_id": "o1", "order_status": "ON_HOLD"}})
    await producer.send_and_wait(topic_name(TIKTOK_WEBHOOKS, p), hook, key=f"{SHOP}:o1".encode(),
                                 headers=[("shopsync_received_at", b"2026-11-25T10:00:00Z")])
    await producer.send_and_wait(topic_name(ORDERS_SKIPPED, p), orjson.dumps(
        {"shop_id": SHOP, "order_id": "o1", "reasons": ["status:ON_HOLD"], "skipped_at": "2026-11-25T10:00:01Z"}),
        key=f"{SHOP}:o1".encode())
    order = make_order("o1", [("RED-L", "k1")])
    await producer.send_and_wait(topic_name(ORDERS_INGESTED, p), orjson.dumps(
        {**order.to_dict(), "ingested_at": "2026-11-25T11:00:00Z"}), key=order.key.encode())
    await producer.stop()
    app = create_audit_app(settings, AuditStore(tmp_path / "audit.db"))
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as http:
        async def indexed() -> list[dict[str, Any]] | None:
            rows: list[dict[str, Any]] = (await http.get("/orders/o1", params={"shop_id": SHOP})).json()
            return rows if len(rows) >= 3 else None

        rows = await eventually(indexed, every=0.1, what="three steps of o1 indexed")
    assert [r["kind"] for r in rows] == ["webhook", "skipped", "accepted"]
    assert rows[1]["detail"]["reasons"] == ["status:ON_HOLD"]


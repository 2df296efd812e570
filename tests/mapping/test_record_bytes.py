"""The enriched records are byte for byte those published before the #17 performance pass (recorded from 8816a50):
value, key and every header in order, for each cause and lifecycle (the traceparent's random span id aside).
No broker: the service publishes through a recording producer."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from services.mapping import service as service_module
from services.mapping.service import MappingService
from shared.mappings import Mapping, mapping_key
from shared.orders import OrderLine
from shared.settings import load_settings
from tests.mapping_harness import SHOP, WITHDRAWN, make_order

RECORDED = Path(__file__).parent / "data" / "enriched_records.json"
PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
SPAN = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$")
NOW = 1_796_000_000.123456


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                   headers: list[tuple[str, bytes]] | None = None,
                   partition: int | None = None) -> asyncio.Future[None]:
        self.sent.append({"topic": topic, "key": key, "value": value, "headers": list(headers or [])})
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def ingested(order: Any, offset: int, extra: list[tuple[str, bytes]] = ()) -> ConsumerRecord:  # type: ignore[assignment]
    headers = [("ce_type", b"shopsync.order.ingested"), ("traceparent", PARENT.encode()), *extra]
    return ConsumerRecord("t", 0, offset, 0, 0, order.key.encode(), orjson.dumps(order.to_dict()), None, 0, 0,
                          headers)


async def published(monkeypatch: pytest.MonkeyPatch) -> tuple[list[dict[str, Any]], MappingService]:
    monkeypatch.setattr(service_module.time, "time", lambda: NOW)
    producer = RecordingProducer()
    service = MappingService(load_settings(shopsync_topic_prefix="bytes."), producer=producer,
                             consumer=cast(AIOKafkaConsumer, None))
    service.table.apply(mapping_key(SHOP, "RED-L"), Mapping("P-RED-L", "2026-11-25T00:00:00Z", "t", 3), 0)
    mapped = make_order("o1", [("RED-L", "k1"), ("RED-L", "k1")])
    partial = make_order("o2", [("RED-L", "k1"), ("", "k2"), ("BLUE-M", "k3")])
    partial.lines[0] = OrderLine("o2-0", "k1", "RED-L", "p-k1", "Product k1", "M", "9.99", "12.00", "pkg-1")
    partial.currency, partial.create_time, partial.ingested_at = "GBP", 1_796_000_000, "2026-11-30T10:00:00Z"
    partial.extra = {"buyer_message": "ring twice"}
    withdrawn = make_order("o3", [("BLUE-M", "k3")], version=2, lifecycle=WITHDRAWN)
    offset = 0
    for order in (mapped, partial, withdrawn):
        await service.on_order_record(ingested(order, offset))
        offset += 1
    await service.on_order_record(ingested(mapped, offset, [("replay_id", b"r-1"), ("shopsync_replay_force", b"1")]))
    service.table.apply(mapping_key(SHOP, "BLUE-M"), Mapping("P-BLUE-M", "2026-11-25T00:00:00Z", "t", 1), 1)
    await service.on_mapping_change(mapping_key(SHOP, "BLUE-M"))
    await service.on_order_record(ingested(mapped, offset + 1))  # same content again: not published
    return producer.sent, service


def comparable(sent: dict[str, Any]) -> dict[str, Any]:
    """A published record with its traceparent (random ids) replaced by what it continues."""
    headers = []
    for name, value in sent["headers"]:
        if name == "traceparent":
            match = SPAN.match(value.decode())
            value = "invalid" if not match else "child of the parent" if match.group(1) == PARENT[3:35] else "new"
        else:
            value = value.decode()
        headers.append([name, value])
    return {"topic": sent["topic"], "key": sent["key"].decode(), "value": sent["value"].decode(), "headers": headers}


async def test_enriched_records_are_byte_for_byte_as_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    sent, service = await published(monkeypatch)
    records = [comparable(each) for each in sent]
    metrics = sorted([sample.name, [list(kv) for kv in sorted(sample.labels.items())], sample.value]
                     for family in service.registry.collect() for sample in family.samples
                     if sample.name.startswith("mapping_") and not sample.name.endswith("_created"))
    if os.environ.get("SHOPSYNC_RECORD_ENRICHED"):  # re-record (only when the contract is meant to change)
        RECORDED.write_bytes(orjson.dumps({"records": records, "metrics": metrics}, option=orjson.OPT_INDENT_2))
    recorded = orjson.loads(RECORDED.read_bytes())
    assert records == recorded["records"]
    assert metrics == recorded["metrics"]
    assert [r["headers"][-1] for r in records if r["headers"][-1][0] == "shopsync_mapping_key"]

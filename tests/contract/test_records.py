"""Real records from a pipeline run validate against shared/schemas and parse with the CloudEvents SDK."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import jsonschema
import orjson
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event

from services.mapping.wiring import build_service as build_mapping
from shared.admin import serve
from shared.kafka import create_producer, read_to_end
from shared.mappings import Mapping
from shared.order_checks import is_check, new_check, request_check
from shared.topics import MAPPINGS, ORDERS_ENRICHED, ORDERS_INGESTED, ORDERS_SKIPPED, STORES, TIKTOK_WEBHOOKS
from shared.tracing import new_traceparent
from tests.ingest_harness import Harness
from tests.topicview import TopicView

SCHEMAS = Path(__file__).resolve().parents[2] / "shared" / "schemas"
LA, NJ = "7000000000000000001", "7000000000000000002"
CHECK_SCHEMA = json.loads((SCHEMAS / "tiktok.webhooks.order-check.json").read_text())
CLOUDEVENT_TOPICS = (TIKTOK_WEBHOOKS, ORDERS_INGESTED, ORDERS_SKIPPED, ORDERS_ENRICHED)


async def test_every_record_of_a_run_matches_its_schema_and_is_a_cloudevent(harness: Harness) -> None:
    assert (await harness.link("Main store", "LA Warehouse")).status_code == 200
    await harness.start_ingest()
    producer = create_producer(harness.settings)
    await producer.start()
    service = build_mapping(harness.settings)
    task = asyncio.create_task(serve(service))
    try:
        cancelled = await harness.create_order(warehouse_id=LA)
        await harness.create_order(warehouse_id=LA)
        await harness.create_order(warehouse_id=NJ)
        await harness.create_order(warehouse_id=LA, status="ON_HOLD")
        await harness.create_order(warehouse_id=LA, lines=[{"seller_sku": "", "sku_id": "172959296970000000500"}])
        async with TopicView(harness.settings, ORDERS_ENRICHED) as view:
            await view.until(lambda rs: len(rs) >= 3)
            await harness.move(cancelled["id"], "CANCELLED")
            await view.until(lambda rs: any(orjson.loads(r.value)["lifecycle"] == "withdrawn" for r in rs))
        await service.write_mapping(f"{cancelled['shop_id']}:RED-S", Mapping("P-RED-S", "2026-11-25T00:00:00Z", "t", 1))
        check = new_check(cancelled["shop_id"], cancelled["id"], cancelled["update_time"], "cli")
        await request_check(producer, harness.settings, check, new_traceparent())  # what `shopsync sync` sends
    finally:
        service.stop()
        await task
        await producer.stop()

    checked: dict[str, int] = {}
    for topic in (TIKTOK_WEBHOOKS, ORDERS_INGESTED, ORDERS_SKIPPED, ORDERS_ENRICHED, STORES, MAPPINGS):
        schema = json.loads((SCHEMAS / f"{topic}.json").read_text())
        async for record in read_to_end(harness.settings, topic):
            if record.value is None:
                continue  # tombstones delete
            if is_check(record.headers):  # the second message of tiktok.webhooks, told apart by ce_type
                jsonschema.validate(orjson.loads(record.value), CHECK_SCHEMA)
                checked["order checks"] = checked.get("order checks", 0) + 1
            else:
                jsonschema.validate(orjson.loads(record.value), schema)
            if topic in CLOUDEVENT_TOPICS:
                event = from_binary_event(KafkaMessage(headers=dict(record.headers), key=record.key,
                                                       value=record.value))
                assert event.get_specversion() == "1.0" and event.get_id() and event.get_source()
                assert event.get_type() and event.get_time() is not None
                assert event.get_datacontenttype() == "application/json"
                data = event.get_data()
                assert (orjson.loads(data) if isinstance(data, (bytes, str)) else data) == orjson.loads(record.value)
            checked[topic] = checked.get(topic, 0) + 1
    assert set(checked) == {TIKTOK_WEBHOOKS, ORDERS_INGESTED, ORDERS_SKIPPED, ORDERS_ENRICHED, STORES, MAPPINGS,
                            "order checks"}
    assert checked[ORDERS_ENRICHED] >= 4 and checked[ORDERS_SKIPPED] >= 2

"""Enrichment and re-emission against the real broker."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx
import orjson
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from services.mapping.enrich import enrich
from services.mapping.service import GROUP, MappingService, _Rebalance
from services.mapping.wiring import build_app
from shared.admin import serve
from shared.envelope import header_map
from shared.kafka import create_consumer, create_producer, read_to_end
from shared.mapping_table import MappingTable
from shared.mappings import Mapping, mapping_key
from shared.partitioner import murmur2
from shared.settings import Settings
from shared.topics import ORDERS_ENRICHED, ORDERS_INGESTED, topic_name
from tests.mapping_harness import SHOP, TOKEN, WITHDRAWN, MappingHarness, make_order, publish
from tests.servers import serve_app
from tests.topicview import TopicView, consumed_to_end
from tests.waiting import eventually


def by_key(records: list[Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        out.setdefault(r.key.decode(), []).append(orjson.loads(r.value))
    return out


async def enriched_when_settled(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Every `orders.enriched` value per key, once the mapping group has committed every order record.

    It commits a record only after what it emitted for it is acknowledged, and the admin API answers a mapping
    change only after the re-emissions it caused are: so nothing more is on its way for what happened so far.
    """
    async def consumed() -> bool:
        return await consumed_to_end(settings, GROUP, ORDERS_INGESTED)

    await eventually(consumed, every=0.1, what="the mapping service through every order record")
    return by_key([r async for r in read_to_end(settings, ORDERS_ENRICHED)])


def api(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"})


def test_enrich_flags_each_line_and_the_order() -> None:
    order = make_order("o1", [("RED-L", "k1"), ("RED-L", "k1"), ("", "k2"), ("BLUE-M", "k3")])
    doc = enrich(order, {f"{SHOP}:RED-L": Mapping("P-RED-L", "", "", 3)})
    assert [line["mapping_status"] for line in doc["lines"]] == ["mapped", "mapped", "missing_seller_sku", "unmapped"]
    assert doc["lines"][0]["product_code"] == "P-RED-L" and doc["lines"][3]["product_code"] is None
    assert "fill in the seller SKU on TikTok" in doc["lines"][2]["mapping_note"]
    assert [(i["seller_sku"], i["quantity"], i["mapping_status"]) for i in doc["items"]] == [
        ("RED-L", 2, "mapped"), ("", 1, "missing_seller_sku"), ("BLUE-M", 1, "unmapped")]
    assert doc["mapping_state"] == "incomplete" and doc["mapping_versions"] == {"RED-L": 3}


async def test_unmapped_then_mapping_added_is_reemitted_complete(mapping: MappingHarness) -> None:
    await publish(mapping.settings, make_order("o1", [("RED-L", "k1")]))
    async with mapping.enriched() as view:
        await view.until(lambda rs: len(rs) == 1)
        assert view.values()[0]["mapping_state"] == "incomplete" and view.values()[0]["cause"] == "order_update"
        assert (await mapping.put("RED-L", "P-100")).status_code == 200
        await view.until(lambda rs: len(rs) == 2)
        second = view.records[1]
    value = view.values()[1]
    assert value["mapping_state"] == "complete" and value["cause"] == "mapping_change" and value["revision"] == 2
    assert value["lines"][0]["product_code"] == "P-100"
    headers = header_map(second.headers)
    assert headers["shopsync_mapping_key"] == f"{SHOP}:RED-L" and headers["ce_type"] == "shopsync.order.enriched"


async def test_mapping_changed_then_deleted(mapping: MappingHarness) -> None:
    await mapping.put("RED-L", "P-100")
    await publish(mapping.settings, make_order("o1", [("RED-L", "k1")]))
    async with mapping.enriched() as view:
        await view.until(lambda rs: len(rs) == 1)
        await mapping.put("RED-L", "P-200")
        await view.until(lambda rs: len(rs) == 2)
        assert view.values()[1]["lines"][0]["product_code"] == "P-200"
        assert (await mapping.api.delete(f"/mappings/{SHOP}/RED-L")).status_code == 204
        await view.until(lambda rs: len(rs) == 3)
        assert view.values()[2]["mapping_state"] == "incomplete"
        assert view.values()[2]["lines"][0]["mapping_status"] == "unmapped"


async def test_order_with_two_unmapped_skus_completes_only_after_both(mapping: MappingHarness) -> None:
    await publish(mapping.settings, make_order("o1", [("RED-L", "k1"), ("BLUE-M", "k2")]))
    async with mapping.enriched() as view:
        await view.until(lambda rs: len(rs) == 1)
        await mapping.put("RED-L", "P-1")
        await view.until(lambda rs: len(rs) == 2)
        assert view.values()[1]["mapping_state"] == "incomplete"
        await mapping.put("BLUE-M", "P-2")
        await view.until(lambda rs: len(rs) == 3)
        assert view.values()[2]["mapping_state"] == "complete"


async def test_unrelated_and_withdrawn_orders_are_not_reemitted(mapping: MappingHarness) -> None:
    await publish(mapping.settings, make_order("o1", [("RED-L", "k1")]), make_order("o2", [("BLUE-M", "k2")]),
                  make_order("o3", [("RED-L", "k1")]))
    await publish(mapping.settings, make_order("o3", [("RED-L", "k1")], version=2, lifecycle=WITHDRAWN))
    async with mapping.enriched() as view:
        await view.until(lambda rs: len(rs) == 4)
        assert by_key(view.records)[f"{SHOP}:o3"][-1]["lifecycle"] == "withdrawn"
    assert (await mapping.put("RED-L", "P-1")).status_code == 200
    counts = {k: len(v) for k, v in (await enriched_when_settled(mapping.settings)).items()}
    assert counts == {f"{SHOP}:o1": 2, f"{SHOP}:o2": 1, f"{SHOP}:o3": 2}


async def test_same_mapping_again_reemits_nothing(mapping: MappingHarness) -> None:
    await mapping.put("RED-L", "P-1")
    await publish(mapping.settings, make_order("o1", [("RED-L", "k1")]))
    async with mapping.enriched() as view:
        await view.until(lambda rs: len(rs) == 1)
    await mapping.put("RED-L", "P-1")
    await publish(mapping.settings, make_order("o1", [("RED-L", "k1")]))  # redelivered: same content
    await mapping.put("BLUE-M", "P-2")
    await publish(mapping.settings, make_order("o9", [("BLUE-M", "k2")]))
    counts = {k: len(v) for k, v in (await enriched_when_settled(mapping.settings)).items()}
    assert counts == {f"{SHOP}:o1": 1, f"{SHOP}:o9": 1}


async def test_missing_seller_sku_is_flagged_with_the_fix(mapping: MappingHarness) -> None:
    await publish(mapping.settings, make_order("o1", [("", "k9")]))
    async with mapping.enriched() as view:
        await view.until(lambda rs: len(rs) == 1)
    line = view.values()[0]["lines"][0]
    assert line["mapping_status"] == "missing_seller_sku" and "seller SKU" in line["mapping_note"]
    unmapped = (await mapping.api.get("/unmapped")).json()
    assert unmapped[0]["mapping_status"] == "missing_seller_sku" and unmapped[0]["sku_id"] == "k9"


async def test_restart_restores_the_index_and_continues_revisions(mapping_settings: Settings) -> None:
    await publish(mapping_settings, make_order("o1", [("RED-L", "k1")]), make_order("o2", [("RED-L", "k1")]))
    app, _ = build_app(mapping_settings)
    async with serve_app(app), TopicView(mapping_settings, ORDERS_ENRICHED) as view:
        await view.until(lambda rs: len(rs) == 2)
    app2, service2 = build_app(mapping_settings)  # a restarted instance: same group, state from the topics
    async with serve_app(app2) as url, api(url) as http:
        await eventually(lambda: service2.state.orders, what="the open orders restored")
        assert set(service2.state.orders) == {f"{SHOP}:o1", f"{SHOP}:o2"}
        await http.put(f"/mappings/{SHOP}/RED-L", json={"product_code": "P-1"})
        async with TopicView(mapping_settings, ORDERS_ENRICHED) as view:
            await view.until(lambda rs: len(rs) == 4)
            latest = {r.key.decode(): r for r in view.records}
    assert {orjson.loads(r.value)["revision"] for r in latest.values()} == {2}


def same_partition_as(key: str, partitions: int) -> str:
    """A seller SKU whose mapping key lands on the same `shopsync.mappings` partition as `key`."""
    def partition(k: str) -> int:
        return (murmur2(k.encode()) & 0x7FFFFFFF) % partitions

    return next(sku for n in itertools.count() if partition(mapping_key(SHOP, sku := f"MARK-{n}")) == partition(key))


async def test_two_instances_reemit_each_affected_order_once(mapping_settings: Settings) -> None:
    orders = [make_order(f"o{i}", [("RED-L", "k1")]) for i in range(30)]
    await publish(mapping_settings, *orders)
    app1, s1 = build_app(mapping_settings)
    app2, s2 = build_app(mapping_settings)
    async with serve_app(app1) as url1, serve_app(app2), api(url1) as http:
        async with TopicView(mapping_settings, ORDERS_ENRICHED) as view:
            await view.until(lambda rs: len(rs) == 30)
        await eventually(lambda: (s1.consumer.assignment() and s2.consumer.assignment()
                                  and len(s1.state.orders) + len(s2.state.orders) == 30),
                         every=0.1, what="both members owning partitions once the group settles")
        await http.put(f"/mappings/{SHOP}/RED-L", json={"product_code": "P-1"})  # to s1; s2 follows the topic
        # s2 re-emits its share while following the mapping topic: a later mapping on the same partition that it
        # has applied proves it is through the first (a follower applies a partition's records in order)
        marker = same_partition_as(mapping_key(SHOP, "RED-L"), mapping_settings.shopsync_topic_partitions)
        await http.put(f"/mappings/{SHOP}/{marker}", json={"product_code": "P-MARK"})
        await eventually(lambda: mapping_key(SHOP, marker) in s2.table.mappings, what="the second instance through")
        counts = {k: len(v) for k, v in (await enriched_when_settled(mapping_settings)).items()}
    assert counts == {o.key: 2 for o in orders}


def test_table_ignores_records_older_than_what_it_applied() -> None:
    table = MappingTable()
    assert table.apply("s:A", Mapping("P-2", "", "", 2), offset=5)
    assert not table.apply("s:A", Mapping("P-1", "", "", 1), offset=3)  # the follower replaying history
    assert table.mappings["s:A"].product_code == "P-2"
    assert not table.apply("s:A", None, offset=4)
    assert table.apply("s:A", None, offset=6) and "s:A" not in table.mappings


async def test_records_fetched_before_a_revocation_are_left_to_the_new_owner(mapping_settings: Settings) -> None:
    """aiokafka rebalances beside the consuming loop: a batch still in hand after its partition was revoked must
    not be enriched against the dropped state (that emitted a second revision 1 once under load)."""
    topic = topic_name(ORDERS_INGESTED, mapping_settings.shopsync_topic_prefix)

    def record(order_id: str, offset: int) -> ConsumerRecord:
        order = make_order(order_id, [("RED-L", "k1")])
        value = orjson.dumps(order.to_dict())
        return ConsumerRecord(topic, 0, offset, 0, 0, order.key.encode(), value, None, 0, len(value), [])

    producer = create_producer(mapping_settings)
    await producer.start()
    try:
        service = MappingService(mapping_settings, producer=producer, consumer=create_consumer(mapping_settings, None))
        fetched_in = service.generation
        assert await service.on_order_record(record("o1", 0), fetched_in)
        await _Rebalance(service).on_partitions_revoked([TopicPartition(topic, 0)])
        assert not await service.on_order_record(record("o1", 0), fetched_in)  # redelivered to the next owner
        assert not await service.on_order_record(record("o2", 1), fetched_in)
        assert await service.on_order_record(record("o2", 1), service.generation)  # fetched after: processed
        await service.flush()  # every emission acknowledged: the topic holds them all
    finally:
        await producer.stop()
    enriched = [r async for r in read_to_end(mapping_settings, ORDERS_ENRICHED)]
    assert sorted((r.key.decode(), orjson.loads(r.value)["revision"]) for r in enriched) == [
        (f"{SHOP}:o1", 1), (f"{SHOP}:o2", 1)]


async def test_records_handed_out_while_the_state_is_restoring_wait_for_it(mapping_settings: Settings) -> None:
    """aiokafka returns records of newly assigned partitions before on_partitions_assigned has finished: an order
    the previous owner enriched (but did not commit) must not get a second revision 1 from the new owner."""

    class SlowRestore(MappingService):
        async def restore(self, partitions: set[int]) -> None:
            await asyncio.sleep(1.5)  # a big topic to read: the fetcher has records ready long before this ends
            await super().restore(partitions)

    order = make_order("o1", [("RED-L", "k1")])
    await publish(mapping_settings, order)
    producer = create_producer(mapping_settings)
    await producer.start()
    group = topic_name(GROUP, mapping_settings.shopsync_topic_prefix)
    service = SlowRestore(mapping_settings, producer=create_producer(mapping_settings),
                          consumer=create_consumer(mapping_settings, group))
    try:
        previous_owner = MappingService(mapping_settings, producer=producer,  # enriched o1, then died before committing
                                        consumer=create_consumer(mapping_settings, None))
        assert await previous_owner.emit(order, "order_update")
        await previous_owner.flush()
        running = asyncio.create_task(serve(service))
        await eventually(lambda: service.consumer.assignment(), what="the new owner assigned")
        consumer = service.consumer
        tps = [TopicPartition(topic_name(ORDERS_INGESTED, mapping_settings.shopsync_topic_prefix), p)
               for p in range(mapping_settings.shopsync_topic_partitions)]

        async def committed_past_o1() -> bool:
            return sum([await consumer.committed(tp) or 0 for tp in tps]) >= 1

        await eventually(committed_past_o1, what="the new owner consumed o1 and committed past it")
        service.stop()
        await running
    finally:
        service.stop()
        await producer.stop()
    enriched = [r async for r in read_to_end(mapping_settings, ORDERS_ENRICHED)]
    assert [orjson.loads(r.value)["revision"] for r in enriched] == [1]
    assert service.metrics.unchanged._value.get() == 2  # found unchanged by the restore, then by the consumer

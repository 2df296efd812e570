"""The broker stops mid-traffic and comes back: the gateway answers 503 meanwhile, TikTok retries, and the ingest
and mapping services resume by themselves; every order ends up enriched or skipped."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from aiokafka.errors import KafkaError

from services.mapping.wiring import build_service as build_mapping
from services.store_sync.service import build_service as build_store_sync
from services.webhook_gateway.oauth import oauth_routes
from services.webhook_gateway.wiring import build_app
from shared.admin import serve
from shared.kafka import create_consumer, create_producer, partitions_of
from shared.producer import ManagedProducer
from shared.settings import Settings, load_settings
from shared.stores.crypto import generate_key
from shared.topics import ORDERS_ENRICHED, ORDERS_SKIPPED, topic_name
from shopsync.localkafka import LocalKafka
from shopsync.topic_admin import ensure_topics
from tests.ingest_harness import Harness
from tests.sandbox import Sandbox
from tests.servers import serve_app
from tests.stores.owner import running_owner
from tests.topicview import TopicView
from tests.waiting import eventually

LA = "7000000000000000001"
OUTAGE_S = 10.0  # how long the broker stays away: sends fail meanwhile, as they do when aiokafka's producers wedge


def restart_settings(broker: LocalKafka, sandbox: Sandbox, prefix: str, **extra: object) -> Settings:
    """Settings for a pipeline on the private broker, linked to the sandbox, with this test's topic prefix."""
    return load_settings(
        kafka_bootstrap_servers=broker.bootstrap, shopsync_topic_prefix=prefix,
        tiktok_app_key=sandbox.config.app_key, tiktok_app_secret=sandbox.config.app_secret,
        shopsync_secret_key=generate_key(), tiktok_service_id=sandbox.config.service_id,
        tiktok_authorize_url=sandbox.base_url + "/open/authorize", **extra)


@pytest.fixture
def private_broker(tmp_path: Path):
    broker = LocalKafka(home=tmp_path / "k", port=19694, controller_port=19695, heap="384m")
    broker.start()
    yield broker
    broker.stop()


async def test_pipeline_resumes_after_a_broker_restart(private_broker: LocalKafka, sandbox: Sandbox) -> None:
    settings = restart_settings(private_broker, sandbox, "restart.", shopsync_reconcile_interval_s=0,
                                shopsync_publish_timeout_s=1.0, shopsync_coalesce_ms=20)
    await ensure_topics(settings)
    h = Harness(settings, sandbox, "")
    app = build_app(settings, extra_routes=oauth_routes(settings))
    async with running_owner(settings, h.client()), serve_app(app) as url:
        await sandbox.control("POST", "/sandbox/config", {"webhook_url": url + "/webhooks/tiktok",
                                                          "redirect_url": url + "/oauth/tiktok/callback",
                                                          "time_factor": 600.0})
        assert (await h.link("Main store", "LA Warehouse")).status_code == 200
        await h.start_ingest()
        mapping = build_mapping(settings)
        mapping_task = asyncio.create_task(serve(mapping))
        try:
            created = [await h.create_order(warehouse_id=LA if i % 4 else "7000000000000000002") for i in range(10)]
            await asyncio.to_thread(private_broker.stop)
            during = [await h.create_order(warehouse_id=LA) for _ in range(10)]  # answered 503, retried later
            created += during

            async def refused_while_down() -> bool:  # the outage lasts until the gateway said 503 to each of them
                ids = {o["id"] for o in during}
                pushes = [p for p in await sandbox.pushes() if p["order_id"] in ids]
                return len(pushes) == len(ids) and all(503 in p["answers"] for p in pushes)

            await eventually(refused_while_down, within=60, every=0.1, what="a 503 for every push during the outage")
            await asyncio.to_thread(private_broker.start)
            created += [await h.create_order(warehouse_id=LA) for _ in range(10)]
            expected_enriched = {o["id"] for i, o in enumerate(created) if i >= 10 or i % 4}
            expected_skipped = {o["id"] for i, o in enumerate(created) if i < 10 and not i % 4}
            async with TopicView(settings, ORDERS_ENRICHED) as enriched, TopicView(settings, ORDERS_SKIPPED) as skipped:
                async def all_decided() -> bool:
                    await enriched.poll(timeout_ms=100)
                    await skipped.poll(timeout_ms=100)
                    return ({v["order_id"] for v in enriched.values()} >= expected_enriched and
                            {v["order_id"] for v in skipped.values()} >= expected_skipped)

                await eventually(all_decided, within=120, every=0, what="every order enriched or skipped")

            async def all_delivered() -> bool:  # TikTok's retries of the 503'd pushes succeed once Kafka is back
                return all(p["delivered"] for p in await sandbox.pushes())

            await eventually(all_delivered, within=120, every=0.5, what="every push delivered")
        finally:
            mapping.stop()
            await mapping_task
            h.stop.set()
            if h.task is not None:
                await h.task


async def test_store_sync_rides_out_a_broker_restart(private_broker: LocalKafka, sandbox: Sandbox) -> None:
    """Shipments in flight while the broker goes away: their outcomes are published once it is back, and TikTok
    is told about each shipment exactly once."""
    from services.store_sync.retry import store_sync_policy
    from shared.envelope import rfc3339
    from shared.topics import OMS_SHIPMENTS, SYNC_RESULTS, topic_name

    settings = restart_settings(private_broker, sandbox, "restart-sync.", shopsync_sync_retry_base_s=0.2,
                                shopsync_sync_max_attempts=12)  # TikTok at 5 QPS here: 429s until it has them all
    await ensure_topics(settings)
    h = Harness(settings, sandbox, "")
    app = build_app(settings, extra_routes=oauth_routes(settings))
    async with running_owner(settings, h.client()), serve_app(app) as url:
        await sandbox.control("POST", "/sandbox/config", {"redirect_url": url + "/oauth/tiktok/callback", "qps": 5})
        assert (await h.link("Main store", "LA Warehouse")).status_code == 200
        orders = [await h.create_order(warehouse_id=LA) for _ in range(12)]
        producer = create_producer(settings)
        await producer.start()
        for n, order in enumerate(orders):
            await producer.send_and_wait(topic_name(OMS_SHIPMENTS, settings.shopsync_topic_prefix), orjson.dumps({
                "shipment_id": f"r{n}", "shop_id": order["shop_id"], "order_id": order["id"], "carrier": "usps",
                "tracking_number": f"RESTART{n:04d}", "line_item_ids": None, "shipped_at": rfc3339(0)}),
                key=f"{order['shop_id']}:{order['id']}".encode())
        await producer.stop()
        stop = asyncio.Event()
        service = build_store_sync(settings, h.client(store_sync_policy(settings)), stop)
        task = asyncio.create_task(serve(service))

        async def shipments_at_tiktok() -> int:
            return len((await sandbox.control("GET", "/sandbox/shipments")).json())

        try:
            async def some_shipped() -> bool:  # TikTok (5 QPS here) has some of the shipments, not all
                return await shipments_at_tiktok() >= 2

            await eventually(some_shipped, within=60, what="two shipments at TikTok")
            await asyncio.to_thread(private_broker.stop)
            await asyncio.sleep(3)  # the fault itself (the broker stays away), not a wait for something to happen
            await asyncio.to_thread(private_broker.start)
            applied = {o["id"] for o in orders}
            async with TopicView(settings, SYNC_RESULTS) as results:
                await results.until(lambda _: {v["order_id"] for v in results.values()
                                               if v["status"] == "applied"} == applied, within=120)
            assert not task.done()  # it kept running through the outage
        finally:
            stop.set()
            await task
    shipped = [s["order_id"] for s in (await sandbox.control("GET", "/sandbox/shipments")).json()]
    assert sorted(shipped) == sorted(o["id"] for o in orders)


async def serves_topics(settings: Settings, *topics: str) -> bool:
    """Whether the broker answers metadata for every topic (a restarted broker loads its logs first)."""
    consumer = create_consumer(settings, None)
    try:
        await consumer.start()
        return all([await partitions_of(consumer, topic_name(t, settings.shopsync_topic_prefix)) for t in topics])
    except KafkaError:
        return False
    finally:
        await consumer.stop()


def wedge(producer: ManagedProducer) -> int:
    """Give a managed producer's current aiokafka producer the sequence gap aiokafka#1017 leaves behind on every
    partition it has written: its next send there is refused with OutOfOrderSequenceNumber."""
    numbers = producer._producer._txn_manager._sequence_numbers  # type: ignore[union-attr]
    written = [tp for tp, n in numbers.items() if n > 0]
    for tp in written:
        numbers[tp] += 5
    return len(written)


async def test_ingest_mapping_and_store_sync_publish_again_after_a_broker_restart_and_wedged_producers(
        private_broker: LocalKafka, sandbox: Sandbox) -> None:
    """Orders, cancellations and shipments in flight while the broker restarts; then every long-lived producer is
    wedged as aiokafka leaves it. No service restarts, and the end state matches the sandbox's truth."""
    from services.store_sync.retry import store_sync_policy
    from shared.envelope import rfc3339
    from shared.kafka import create_managed_producer
    from shared.topics import OMS_SHIPMENTS, SYNC_RESULTS, topic_name

    settings = restart_settings(private_broker, sandbox, "restart-wedge.", shopsync_reconcile_interval_s=0,
                                shopsync_publish_timeout_s=1.0, shopsync_coalesce_ms=20,
                                shopsync_sync_retry_base_s=0.2, shopsync_sync_max_attempts=12)
    await ensure_topics(settings)
    h = Harness(settings, sandbox, "")
    app = build_app(settings, extra_routes=oauth_routes(settings))
    async with running_owner(settings, h.client()), serve_app(app) as url:
        await sandbox.control("POST", "/sandbox/config", {"webhook_url": url + "/webhooks/tiktok",
                                                          "redirect_url": url + "/oauth/tiktok/callback",
                                                          "time_factor": 600.0})
        assert (await h.link("Main store", "LA Warehouse")).status_code == 200
        await h.start_ingest()
        mapping = build_mapping(settings)
        mapping_producer = mapping.producer
        stop = asyncio.Event()
        mapping_task = asyncio.create_task(serve(mapping))
        sync = build_store_sync(settings, h.client(store_sync_policy(settings)), stop)
        sync_task = asyncio.create_task(serve(sync))
        oms = create_managed_producer(settings, "oms")
        await oms.start()
        shipments = topic_name(OMS_SHIPMENTS, settings.shopsync_topic_prefix)

        async def burst(n: int) -> list[dict]:
            return list(await asyncio.gather(*(h.create_order(warehouse_id=LA) for _ in range(n))))

        async def ship(order: dict, n: int) -> None:
            await oms.deliver(shipments, orjson.dumps({
                "shipment_id": f"w{n}", "shop_id": order["shop_id"], "order_id": order["id"], "carrier": "usps",
                "tracking_number": f"WEDGE{n:04d}", "line_item_ids": None, "shipped_at": rfc3339(0)}),
                key=f"{order['shop_id']}:{order['id']}".encode())

        try:
            await eventually(lambda: h.service is not None and h.service.ready.is_set() and mapping.ready.is_set()
                             and sync.ready.is_set() and sync.inventory is not None, within=60, every=0.1,
                             what="ingest, mapping and store sync started (state restored, consuming)")
            created = await burst(10) + await burst(10)
            down = asyncio.create_task(asyncio.to_thread(private_broker.stop))
            created += await burst(10)  # pushed while the broker goes away: 503, retried by the sandbox
            cancelled = [o["id"] for o in created[:5]]
            for order_id in cancelled:
                await h.move(order_id, "CANCELLED")
            await down
            await asyncio.sleep(OUTAGE_S)  # the fault itself, not a wait for something to happen
            await asyncio.to_thread(private_broker.start)
            producers = {"ingest": h.service.producer, "mapping": mapping_producer,  # type: ignore[union-attr]
                         "store_sync": sync.producer}
            shipped: list[dict] = []
            open_ids: set[str] = set()
            await eventually(lambda: serves_topics(settings, ORDERS_ENRICHED, SYNC_RESULTS), within=60, every=0.2,
                             what="the restarted broker serving the topics")

            async with TopicView(settings, ORDERS_ENRICHED) as enriched, TopicView(settings, SYNC_RESULTS) as results:
                def state() -> tuple[set[str], set[str]]:
                    latest = {v["order_id"]: v["mapping_state"] for v in enriched.latest().values()}
                    applied = {v["order_id"] for v in results.values() if v["status"] == "applied"}
                    return {oid for oid, s in latest.items() if s != "withdrawn"}, applied

                async def settle() -> None:
                    expected = (open_ids, {o["id"] for o in shipped})

                    async def settled() -> bool:
                        await enriched.poll(timeout_ms=100)
                        await results.poll(timeout_ms=100)
                        return state() == expected

                    def difference() -> str:
                        active, applied = state()
                        return (f"active but not open: {active - open_ids}; open but not active: "
                                f"{open_ids - active}; shipped, not applied: {expected[1] - applied}")

                    await eventually(settled, within=150, every=0, what=difference)

                async def round_of(orders: int, cancel: int, ship_from: int, ships: int) -> None:
                    fresh = await burst(orders)
                    created.extend(fresh)
                    for order in fresh[:cancel]:
                        await h.move(order["id"], "CANCELLED")
                        cancelled.append(order["id"])
                    for order in created[ship_from:ship_from + ships]:
                        await ship(order, len(shipped))
                        shipped.append(order)
                    open_ids.clear()
                    open_ids.update({o["id"] for o in created} - set(cancelled) - {o["id"] for o in shipped})
                    await settle()

                await round_of(10, 0, 10, 2)  # after the outage: every service publishes with its producer
                wedged = {name: wedge(p) for name, p in producers.items()}  # type: ignore[arg-type]
                assert all(wedged.values()), wedged
                before = {name: p.restarts for name, p in producers.items()}  # type: ignore[union-attr]
                await round_of(10, 3, 12, 3)  # each producer's next send is refused: it is replaced
            assert not mapping_task.done() and not sync_task.done() and not h.task.done()  # type: ignore[union-attr]
            restarts = {name: p.restarts for name, p in producers.items()}  # type: ignore[union-attr]
            assert all(restarts[name] > before[name] for name in producers), (before, restarts)
            print(f"producer restarts: {restarts} (before the wedge: {before})")
        finally:
            stop.set()
            mapping.stop()
            h.stop.set()
            await asyncio.gather(mapping_task, sync_task, *(t for t in [h.task] if t), return_exceptions=True)
            await oms.stop()

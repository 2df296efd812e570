"""`kill -9` of store sync mid-batch: after the restart every shipment is on TikTok exactly once and every stock
level has landed, each with an outcome on sync.results."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from shared.envelope import rfc3339
from shared.kafka import create_producer
from shared.mappings import Mapping, mapping_key
from shared.topics import MAPPINGS, OMS_INVENTORY, OMS_SHIPMENTS, SYNC_RESULTS, topic_name
from tests.faults.conftest import Service, settings_env
from tests.ingest_harness import Harness
from tests.sandbox import US_SHOP
from tests.servers import free_port
from tests.topicview import TopicView
from tests.waiting import eventually

LA = "7000000000000000001"
PRODUCTS = 40
ORDERS = 20


async def test_store_sync_killed_mid_batch_loses_nothing(harness: Harness, tmp_path: Path) -> None:
    assert (await harness.link("Main store", "LA Warehouse", shop_id=US_SHOP)).status_code == 200
    for i in range(PRODUCTS):
        answer = await harness.sandbox.control("POST", "/sandbox/products", {
            "shop_id": US_SHOP, "title": f"Kill tee {i}", "skus": [{"seller_sku": f"K-{i:02d}", "inventory": {LA: 1}}]})
        assert answer.status_code == 201, answer.text
    orders = [await harness.create_order(shop_id=US_SHOP, warehouse_id=LA) for _ in range(ORDERS)]
    producer = create_producer(harness.settings)
    await producer.start()
    p = harness.settings.shopsync_topic_prefix
    now = time.time()
    for i in range(PRODUCTS):
        mapping = Mapping(f"P-{i:02d}", rfc3339(now), "t", 1)
        await producer.send(topic_name(MAPPINGS, p), orjson.dumps(mapping.to_dict()),
                            key=mapping_key(US_SHOP, f"K-{i:02d}").encode())
        await producer.send(topic_name(OMS_INVENTORY, p), orjson.dumps(
            {"product_code": f"P-{i:02d}", "available": 11 + i, "as_of": rfc3339(now)}), key=f"P-{i:02d}".encode())
    for n, order in enumerate(orders):
        await producer.send(topic_name(OMS_SHIPMENTS, p), orjson.dumps({
            "shipment_id": f"kill-{n}", "shop_id": US_SHOP, "order_id": order["id"], "carrier": "USPS",
            "tracking_number": f"KILL{n:06d}", "line_item_ids": None, "shipped_at": rfc3339(now)}),
            key=f"{US_SHOP}:{order['id']}".encode())
    await producer.flush()
    await producer.stop()

    port = free_port()
    env = settings_env(harness.settings, TIKTOK_API_BASE=harness.sandbox.base_url,
                       TIKTOK_AUTH_BASE=harness.sandbox.base_url, TIKTOK_RATE_LIMIT_QPS="10",
                       SHOPSYNC_STORE_SYNC_PORT=str(port), SHOPSYNC_SYNC_RETRY_BASE_S="0.05")
    service = Service(["store-sync"], env, f"http://127.0.0.1:{port}/healthz", tmp_path / "store-sync.log")
    await service.start()
    try:
        async def some_written() -> tuple[list[object], list[object]] | None:  # kill once TikTok has some of them
            shipped = (await harness.sandbox.control("GET", "/sandbox/shipments")).json()
            updates = (await harness.sandbox.control("GET", "/sandbox/inventory/updates")).json()
            return (shipped, updates) if len(shipped) + len(updates) >= 10 else None

        shipped, updates = await eventually(some_written, within=60, what="ten writes at TikTok")
        service.kill9()
        assert len(shipped) < ORDERS or len(updates) < PRODUCTS  # it really was mid-batch
        await service.start()
        async with TopicView(harness.settings, SYNC_RESULTS) as view:
            def done(_: object) -> bool:
                latest = view.latest()
                return (all(latest.get(f"P-{i:02d}", {}).get("status") == "applied" for i in range(PRODUCTS))
                        and all(latest.get(f"{US_SHOP}:{o['id']}", {}).get("status") == "applied" for o in orders))
            await view.until(done, within=90)
    finally:
        service.stop()
    shipped = (await harness.sandbox.control("GET", "/sandbox/shipments")).json()
    assert sorted(s["order_id"] for s in shipped) == sorted(o["id"] for o in orders)  # each exactly once
    stock = (await harness.sandbox.control("GET", f"/sandbox/inventory?shop_id={US_SHOP}")).json()[US_SHOP]
    by_sku = {row["seller_sku"]: row["inventory"] for row in stock}
    assert all(by_sku[f"K-{i:02d}"] == {LA: 11 + i} for i in range(PRODUCTS))

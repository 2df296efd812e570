"""Late TikTok retries and package changes over real HTTP: sandbox → gateway (refusing chosen pushes) → ingest."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.order_ingest.conftest import ORDERS_INGESTED, ORDERS_SKIPPED, Harness, TopicView
from tests.topicview import everything

LA = "7000000000000000001"


def key(order: dict[str, Any]) -> str:
    return f"{order['shop_id']}:{order['id']}"


async def until_delivered(harness: Harness, order_id: str, status: str, refused_at_least: int = 1) -> None:
    """Until the sandbox saw a 200 for the order's push of `status`, after it was refused."""
    async with asyncio.timeout(30):
        while True:
            pushes = (await harness.sandbox.control("GET", "/sandbox/webhooks")).json()
            mine = [p for p in pushes if p["order_id"] == order_id and p["status"] == status]
            if mine and mine[0]["delivered"] and mine[0]["answers"].count(503) >= refused_at_least:
                return
            await asyncio.sleep(0.1)


async def until_stale(harness: Harness, count: int) -> None:
    async with asyncio.timeout(30):
        while harness.service is None or harness.service.metrics.stale.labels(type="1")._value.get() < count:
            await asyncio.sleep(0.05)


async def test_a_late_on_hold_retry_does_not_erase_the_newer_awaiting_shipment(harness: Harness) -> None:
    await harness.link("Main store", "")
    await harness.start_ingest()
    harness.refuse = lambda doc: doc["data"].get("order_status") == "ON_HOLD"  # the gateway cannot publish it
    order = await harness.create_order(warehouse_id=LA, status="ON_HOLD")
    await asyncio.sleep(1.1)  # TikTok's update_time has second resolution
    async with TopicView(harness.settings, ORDERS_INGESTED) as view:
        await harness.move(order["id"], "AWAITING_SHIPMENT")
        await view.until(lambda rs: len(rs) == 1)
        harness.refuse = lambda doc: False  # TikTok's next retry of the ON_HOLD push lands
        await until_delivered(harness, order["id"], "ON_HOLD")
        await until_stale(harness, 1)
        await view.poll()
        assert [v["lifecycle"] for v in view.values()] == ["active"]
    assert [s for s in await everything(harness.settings, ORDERS_SKIPPED) if s["order_id"] == order["id"]] == []


async def test_a_late_awaiting_shipment_retry_does_not_revive_a_cancelled_order(harness: Harness) -> None:
    await harness.link("Main store", "")
    await harness.start_ingest()
    harness.refuse = lambda doc: doc["data"].get("order_status") == "AWAITING_SHIPMENT"
    order = await harness.create_order(warehouse_id=LA)
    await asyncio.sleep(1.1)
    async with TopicView(harness.settings, ORDERS_SKIPPED) as skipped:
        await harness.move(order["id"], "CANCELLED")
        await skipped.until(lambda rs: len(rs) == 1)
        assert skipped.values()[0]["reasons"] == ["status:CANCELLED"]
        harness.refuse = lambda doc: False
        await until_delivered(harness, order["id"], "AWAITING_SHIPMENT")
        await until_stale(harness, 1)
    assert [o for o in await everything(harness.settings, ORDERS_INGESTED) if o["order_id"] == order["id"]] == []


async def test_a_package_split_reaches_the_oms_though_update_time_did_not_move(harness: Harness) -> None:
    await harness.link("Main store", "")
    await harness.start_ingest()
    order = await harness.create_order(warehouse_id=LA, lines=[{"seller_sku": "RED-L", "quantity": 2},
                                                               {"seller_sku": "BLU-M", "quantity": 1}])
    async with TopicView(harness.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 1)
        answer = await harness.sandbox.control("POST", "/sandbox/packages", {"sc_type": "SPLIT",
                                                                            "order_ids": [order["id"]]})
        assert answer.status_code == 200, answer.text
        await view.until(lambda rs: len(rs) == 2)
        first, second = view.values()
    assert second["order_version"] == first["order_version"]  # TikTok dated no status change
    packages = [pkg["package_id"] for pkg in answer.json()["package_list"]]
    assert len(packages) == 2 and {line["package_id"] for line in second["lines"]} == set(packages)


async def test_a_package_combine_names_no_order_id_and_every_order_is_re_read(harness: Harness) -> None:
    await harness.link("Main store", "")
    await harness.start_ingest()
    orders = [await harness.create_order(warehouse_id=LA) for _ in range(2)]
    async with TopicView(harness.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len(rs) == 2)
        answer = await harness.sandbox.control("POST", "/sandbox/packages", {
            "sc_type": "COMBINE", "order_ids": [o["id"] for o in orders]})
        assert answer.status_code == 200, answer.text
        await view.until(lambda rs: len(rs) == 4)
        latest = view.latest()
    (package,) = answer.json()["package_list"]
    for order in orders:
        assert {line["package_id"] for line in latest[key(order)]["lines"]} == {package["package_id"]}

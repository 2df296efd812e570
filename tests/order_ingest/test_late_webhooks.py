"""Late TikTok retries and package changes over real HTTP: sandbox → gateway (refusing chosen pushes) → ingest."""

from __future__ import annotations

from typing import Any

from shared.topics import ORDERS_INGESTED, ORDERS_SKIPPED
from tests.ingest_harness import Harness
from tests.topicview import TopicView, everything
from tests.waiting import eventually

LA = "7000000000000000001"


def key(order: dict[str, Any]) -> str:
    return f"{order['shop_id']}:{order['id']}"


async def push_of(harness: Harness, order_id: str, status: str) -> dict[str, Any] | None:
    """The sandbox's record of its push of `status` for the order (None before it was made)."""
    mine = [p for p in await harness.sandbox.pushes() if p["order_id"] == order_id and p["status"] == status]
    return mine[0] if mine else None


async def until_refused(harness: Harness, order_id: str, status: str) -> None:
    """Until the gateway answered 503 to the order's push of `status`: its next attempt is a late retry."""
    async def refused() -> bool:
        push = await push_of(harness, order_id, status)
        return push is not None and 503 in push["answers"]

    await eventually(refused, every=0.1, what=f"the {status} push of {order_id} refused")


async def until_delivered(harness: Harness, order_id: str, status: str, refused_at_least: int = 1) -> None:
    """Until the sandbox saw a 200 for the order's push of `status`, after it was refused."""
    async def delivered_after_refusals() -> bool:
        push = await push_of(harness, order_id, status)
        return push is not None and push["delivered"] and push["answers"].count(503) >= refused_at_least

    await eventually(delivered_after_refusals, every=0.1, what=f"the {status} push of {order_id} delivered late")


async def until_stale(harness: Harness, count: int) -> None:
    def counted() -> bool:
        return harness.service is not None and harness.service.metrics.stale.labels(type="1")._value.get() >= count

    await eventually(counted, what=f"{count} stale order webhook(s) counted")


async def moved_later(harness: Harness, order: dict[str, Any], status: str) -> None:
    """The order's next status, dated after its current one (TikTok's `update_time` has second resolution)."""
    moved = await harness.move(order["id"], status)
    assert moved["update_time"] > order["update_time"]


async def test_a_late_on_hold_retry_does_not_erase_the_newer_awaiting_shipment(harness: Harness) -> None:
    await harness.link("Main store", "")
    await harness.start_ingest()
    harness.refuse = lambda doc: doc["data"].get("order_status") == "ON_HOLD"  # the gateway cannot publish it
    order = await harness.create_order(warehouse_id=LA, status="ON_HOLD")
    await until_refused(harness, order["id"], "ON_HOLD")
    async with TopicView(harness.settings, ORDERS_INGESTED) as view:
        await moved_later(harness, order, "AWAITING_SHIPMENT")
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
    await until_refused(harness, order["id"], "AWAITING_SHIPMENT")
    async with TopicView(harness.settings, ORDERS_SKIPPED) as skipped:
        await moved_later(harness, order, "CANCELLED")
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

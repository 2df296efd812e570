"""TikTok's documented webhook samples (facts §1.4, §9.3, §10.3/4/13: types 1 3 4 5 6 7 15 16 27) through the real
gateway over HTTP, the ingest, and store sync's reader: every one accepted, keyed right, acted on, none dead-lettered.

Bodies follow TikTok's samples (DOCS webhook pages, SKIT EventSamples), including their quirks: no
`tts_notification_id` on type 3, no `order_id` on type 4, a JSON-number `product_id` on types 5 and 16.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson

from services.store_sync.product_events import parse_product_event
from shared.tiktok.signing import webhook_signature
from shared.topics import DLQ, TIKTOK_WEBHOOKS
from tests.ingest_harness import Harness
from tests.topicview import TopicView, everything
from tests.waiting import eventually

LA = "7000000000000000001"
PRODUCT_ID = 1729592969712207000  # a JSON number in TikTok's type 5 and 16 samples


def samples(shop_id: str, order_ids: list[str], now: int) -> list[dict[str, Any]]:
    """One body per documented type, oldest first, the deauthorization last (it stops the store)."""
    one, two = order_ids
    base = {"shop_id": shop_id, "timestamp": now}
    return [
        {"type": 1, "tts_notification_id": "7327112393057371910", **base, "data": {
            "order_id": one, "order_status": "AWAITING_SHIPMENT", "is_on_hold_order": False, "update_time": now}},
        {"type": 3, **base, "data": {"order_id": one, "update_time": now}},
        {"type": 4, "tts_notification_id": "7327112393057371911", **base, "data": {
            "sc_type": "COMBINE", "role_type": "ROLE_SELLER", "update_time": now,
            "package_list": [{"package_id": "1152321127278713123", "order_id_list": [one, two]}]}},
        {"type": 5, "tts_notification_id": "7327112393057371912", **base, "data": {
            "product_id": PRODUCT_ID, "status": "PRODUCT_STATUS_CHANGED", "suspended_reason": "", "update_time": now}},
        {"type": 15, "tts_notification_id": "7327112393057371913", **base, "data": {
            "product_id": str(PRODUCT_ID), "changed_fields": ["title"], "update_time": now}},
        {"type": 16, "tts_notification_id": "7327112393057371914", **base, "data": {
            "product_id": PRODUCT_ID, "update_time": now}},
        {"type": 27, "tts_notification_id": "7327112393057371915", **base, "data": {
            "product_id": "732357708734418520388", "sku_id": "73235770873441823254",
            "trigger_reason": {"alert_type": "PREDICTION", "lead_days": 21}, "current_inventory_status": "LOW_STOCK",
            "inventory_distribution": {"total_quantity": 100, "available_quantity": 50,
                                       "creator_reserved_quantity": 20, "campaign_reserved_quantity": 20,
                                       "committed_quantity": 10}, "update_time": now}},
        {"type": 7, "tts_notification_id": "7327112393057371916", **base, "data": {
            "message": "Your authorization will expire soon", "expiration_time": str(now + 30 * 86400)}},
        {"type": 6, "tts_notification_id": "7327112393057371917", **base, "data": {
            "message": f"Shop_id {shop_id} is deauthorized"}},
    ]


async def test_every_documented_webhook_sample_is_accepted_keyed_and_acted_on_without_a_dead_letter(
        harness: Harness) -> None:
    await harness.link("Main store", "")
    await harness.start_ingest()
    orders = [await harness.create_order(warehouse_id=LA) for _ in range(2)]
    shop_id, ids = orders[0]["shop_id"], [o["id"] for o in orders]
    posted_at = time.time()
    dated = max(o["update_time"] for o in orders) + 1  # after the orders' last change, with no wait for the clock
    bodies = [orjson.dumps(doc) for doc in samples(shop_id, ids, dated)]
    config = harness.sandbox.config
    service = harness.service
    assert service is not None

    async def post(some: list[bytes]) -> None:
        for body in some:
            answer = await http.post(harness.gateway_url + "/webhooks/tiktok", content=body, headers={
                "Authorization": webhook_signature(config.app_key, config.app_secret, body),
                "Content-Type": "application/json"})
            assert answer.status_code == 200, (body, answer.text)

    def finished(count: int) -> bool:
        read = sum(service.metrics.events.labels(type=str(t))._value.get() for t in (1, 3, 4, 5, 6, 7, 15, 16, 27))
        return read >= count and not service.worker.ledger.in_flight()

    # the authorization samples (7, 6) last: the stores owner acts on them by itself, and a deauthorized store's
    # orders are no longer fetched
    orders_and_products, authorization = bodies[:-2], bodies[-2:]
    async with TopicView(harness.settings, TIKTOK_WEBHOOKS) as topic, httpx.AsyncClient() as http:
        await topic.until(lambda rs: len(rs) == 2)  # the orders' own webhooks
        await post(orders_and_products)
        await eventually(lambda: finished(2 + len(orders_and_products)),
                         what="the ingest read every order and product sample and finished every record")
        fetched = " ".join(call["query"].get("ids", "") for call in (await harness.sandbox.control(
            "GET", "/sandbox/calls")).json() if call["path"] == "/order/202309/orders" and call["at"] >= posted_at)
        assert ids[0] in fetched and ids[1] in fetched  # the second order is named only by the package update
        await post(authorization)
        await topic.until(lambda rs: len(rs) == 2 + len(bodies))
    keys = {r.value: r.key.decode() for r in topic.records}  # partitions interleave: match records by their bytes
    assert [keys.get(body) for body in bodies] == [f"{shop_id}:{ids[0]}"] * 2 + [shop_id] * 7  # exact bytes, keyed
    product_events = [parse_product_event(body) for body in bodies[3:7]]
    assert [(e.type, e.product_id) for e in product_events if e] == [
        (5, str(PRODUCT_ID)), (15, str(PRODUCT_ID)), (16, str(PRODUCT_ID)), (27, "732357708734418520388")]
    await eventually(lambda: finished(2 + len(bodies)), what="the ingest read the authorization samples too")
    assert await everything(harness.settings, DLQ) == []

    async def deauthorized() -> bool:
        store = (await harness.stores()).stores[shop_id]
        return store.status == "deauthorized"

    await eventually(deauthorized, within=30, what="the stores owner applied the deauthorization")
    store = (await harness.stores()).stores[shop_id]
    assert store.status == "deauthorized" and store.authorization_expires_at > time.time()

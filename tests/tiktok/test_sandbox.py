"""The sandbox behaves like TikTok: signed pushes, the retry schedule, the control API, OAuth."""

from __future__ import annotations

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.tiktok_sandbox.pusher import RETRY_SCHEDULE_S
from shared.tiktok.signing import verify_webhook
from tests.sandbox import US_SHOP, Sandbox
from tests.servers import serve_app
from tests.waiting import eventually


class Receiver:
    """A webhook endpoint that fails the first `fail` attempts, and records what it got."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.got: list[tuple[bytes, str]] = []

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.got.append((await request.body(), request.headers.get("authorization", "")))
            return Response(status_code=500 if len(self.got) <= self.fail else 200)
        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


async def test_pushes_carry_a_valid_signature_over_the_exact_body(sandbox: Sandbox) -> None:
    receiver = Receiver()
    async with serve_app(receiver.app()) as url:
        await sandbox.control("POST", "/sandbox/config", {"webhook_url": url + "/hook"})
        created = (await sandbox.control("POST", "/sandbox/orders", {"shop_id": US_SHOP})).json()
        await eventually(lambda: receiver.got, every=0.02)
    body, signature = receiver.got[0]
    assert verify_webhook(sandbox.config.app_key, [sandbox.config.app_secret], body, signature)
    doc = orjson.loads(body)
    assert doc["type"] == 1 and doc["shop_id"] == US_SHOP and doc["data"]["order_id"] == created["id"]
    assert doc["data"]["order_status"] == "AWAITING_SHIPMENT" and doc["tts_notification_id"]


async def test_failed_pushes_are_retried_on_the_scaled_schedule(sandbox: Sandbox) -> None:
    receiver = Receiver(fail=2)
    async with serve_app(receiver.app()) as url:
        await sandbox.control("POST", "/sandbox/config", {"webhook_url": url + "/hook", "time_factor": 6000.0})
        await sandbox.control("POST", "/sandbox/orders", {"shop_id": US_SHOP})
        await eventually(lambda: len(receiver.got) == 3, every=0.02)
        log = (await sandbox.control("GET", "/sandbox/webhooks")).json()
    assert log[0]["answers"] == [500, 500, 200] and log[0]["retries"] == 2 and log[0]["delivered"]
    assert receiver.got[0][0] == receiver.got[2][0]  # the same notification, byte for byte
    assert RETRY_SCHEDULE_S == (120.0, 1800.0, 10800.0, 43200.0)


async def test_push_is_given_up_after_four_retries(sandbox: Sandbox) -> None:
    receiver = Receiver(fail=100)
    async with serve_app(receiver.app()) as url:
        await sandbox.control("POST", "/sandbox/config", {"webhook_url": url + "/hook", "time_factor": 200000.0})
        await sandbox.control("POST", "/sandbox/orders", {"shop_id": US_SHOP})
        await eventually(lambda: (sandbox.app.state.pusher.log and sandbox.app.state.pusher.log[0].gave_up), every=0.02)
    assert len(receiver.got) == 5


async def test_status_moves_push_webhooks_and_cancel_is_spelled_as_the_doc_says(sandbox: Sandbox) -> None:
    receiver = Receiver()
    async with serve_app(receiver.app()) as url:
        await sandbox.control("POST", "/sandbox/config", {"webhook_url": url + "/hook"})
        order = (await sandbox.control("POST", "/sandbox/orders", {"status": "ON_HOLD"})).json()
        moved = await sandbox.control("POST", f"/sandbox/orders/{order['id']}/status", {"status": "CANCELLED"})
        await eventually(lambda: len(receiver.got) == 2, every=0.02)
    assert moved.json()["status"] == "CANCELLED" and moved.json()["update_time"] > order["update_time"]
    assert [orjson.loads(b)["data"]["order_status"] for b, _ in receiver.got] == ["ON_HOLD", "CANCEL"]


async def test_control_api_rejects_bad_input(sandbox: Sandbox) -> None:
    assert (await sandbox.control("POST", "/sandbox/orders", {"shop_id": "nope"})).status_code == 400
    assert (await sandbox.control("POST", "/sandbox/orders", {"status": "LOST"})).status_code == 400
    assert (await sandbox.control("POST", "/sandbox/orders/123/status", {"status": "CANCELLED"})).status_code == 404
    assert (await sandbox.control("POST", "/sandbox/traffic", {"orders_per_s": 0})).status_code == 400


async def test_state_lists_shops_warehouses_and_products(sandbox: Sandbox) -> None:
    state = (await sandbox.control("GET", "/sandbox/state")).json()
    assert {s["region"] for s in state["shops"]} == {"US", "MY"}
    names = [w["name"] for w in state["warehouses"][US_SHOP] if w["type"] == "SALES_WAREHOUSE"]
    assert names.count("Shared Name Warehouse") == 2
    skus = [k for p in state["products"][US_SHOP] for k in p["skus"]]
    assert any(k["seller_sku"] == "" for k in skus)


async def test_traffic_generates_orders_with_webhooks(sandbox: Sandbox) -> None:
    await sandbox.control("POST", "/sandbox/config", {"webhook_url": None})
    started = await sandbox.control("POST", "/sandbox/traffic", {"orders_per_s": 50, "duration_s": 0.5})
    assert started.status_code == 202
    await eventually(lambda: sandbox.world.state()["order_count"] >= 25, every=0.02)


async def test_bulk_orders_are_created_without_webhooks_and_answer_their_webhook_data(sandbox: Sandbox) -> None:
    pushes_before = len(sandbox.app.state.pusher.log)
    plain = await sandbox.control("POST", "/sandbox/orders/bulk", {"shop_id": US_SHOP, "count": 3})
    mixed = await sandbox.control("POST", "/sandbox/orders/bulk", {"shop_id": US_SHOP, "count": 200, "mix": True})
    assert plain.status_code == mixed.status_code == 201
    orders = plain.json()["orders"]
    assert plain.json()["created"] == 3 and len({o["order_id"] for o in orders}) == 3
    assert all(o["order_status"] == "AWAITING_SHIPMENT" and o["shop_id"] == US_SHOP for o in orders)
    assert orders[0]["update_time"] == sandbox.world.order(orders[0]["order_id"])["update_time"]
    mix = mixed.json()["orders"]
    assert {o["order_status"] for o in mix} == {"AWAITING_SHIPMENT", "ON_HOLD"}
    assert len({o["warehouse_id"] for o in mix}) > 1 and {o["shipping_type"] for o in mix} == {"SELLER", "TIKTOK"}
    assert len(sandbox.app.state.pusher.log) == pushes_before  # the caller pushes the webhooks


async def test_bulk_orders_refuse_a_bad_count(sandbox: Sandbox) -> None:
    for count in (0, "5", True, 100_001):
        assert (await sandbox.control("POST", "/sandbox/orders/bulk", {"count": count})).status_code == 400


async def test_oauth_authorize_redirects_with_code_or_denial(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.base_url) as http:
        ok = await http.get("/open/authorize", params={"service_id": "sandbox-service", "state": "abc",
                                                        "redirect_uri": "http://cb/x"})
        denied = await http.get("/open/authorize", params={"service_id": "sandbox-service", "state": "abc",
                                                            "redirect_uri": "http://cb/x", "deny": "1"})
        wrong = await http.get("/open/authorize", params={"service_id": "other", "redirect_uri": "http://cb/x"})
    assert ok.status_code == 302 and "code=code_" in ok.headers["location"] and "state=abc" in ok.headers["location"]
    assert "error=auth_denied" in denied.headers["location"]
    assert wrong.status_code == 400


async def test_auth_codes_work_once(sandbox: Sandbox, tiktok_client) -> None:  # type: ignore[no-untyped-def]
    from shared.tiktok.errors import TikTokError

    code = sandbox.world.issue_auth_code(US_SHOP)
    grant = await tiktok_client.get_token(code)
    assert grant.access_token.startswith("TTP_") and grant.access_token_expire_in > 1_700_000_000
    try:
        await tiktok_client.get_token(code)
        raise AssertionError("a used code must be refused")
    except TikTokError as exc:
        assert exc.code == 36004004

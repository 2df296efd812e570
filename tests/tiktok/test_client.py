"""The TikTok client against the sandbox (real HTTP, real signatures) and narrow error-mapping unit tests."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from shared.settings import load_settings
from shared.tiktok.client import TikTokClient
from shared.tiktok.errors import (
    InvalidPath,
    InvalidSignature,
    NotFound,
    OtherError,
    PermissionDenied,
    RateLimited,
    TokenExpired,
    Transient,
)
from shared.tiktok.models import ShopAuth
from shared.tiktok.ratelimit import RateLimiter
from shared.tiktok.retry import DEFAULT_RETRY, RetryPolicy, counting_calls
from tests.sandbox import MY_SHOP, US_SHOP, Sandbox


def detail_calls(sandbox: Sandbox) -> list[dict]:
    return [c for c in sandbox.app.state.api.call_log if c["path"] == "/order/202309/orders"]


async def test_authorized_shop_and_warehouses(sandbox: Sandbox, tiktok_client: TikTokClient) -> None:
    shop = await sandbox.authorize(tiktok_client, MY_SHOP)
    warehouses = await tiktok_client.get_warehouses(shop)
    assert {w.name for w in warehouses} == {"KL Warehouse"}
    assert {w.type for w in warehouses} == {"SALES_WAREHOUSE", "RETURN_WAREHOUSE"}


async def test_120_ids_are_fetched_in_three_calls_and_merged_in_order(sandbox: Sandbox,
                                                                      tiktok_client: TikTokClient) -> None:
    shop = await sandbox.authorize(tiktok_client)
    ids = [sandbox.world.create_order({"shop_id": US_SHOP})["id"] for _ in range(120)]
    before = len(detail_calls(sandbox))
    orders = await tiktok_client.get_order_detail(shop, list(reversed(ids)))
    assert [o.id for o in orders] == list(reversed(ids))
    calls = detail_calls(sandbox)[before:]
    assert sorted(len(c["query"]["ids"].split(",")) for c in calls) == [20, 50, 50]


async def test_search_follows_page_tokens_over_250_orders_with_a_signed_body(sandbox: Sandbox,
                                                                            tiktok_client: TikTokClient) -> None:
    shop = await sandbox.authorize(tiktok_client)
    for _ in range(250):
        sandbox.world.create_order({"shop_id": US_SHOP, "shipping_type": "SELLER"})
    sandbox.world.create_order({"shop_id": US_SHOP, "shipping_type": "TIKTOK"})
    found = [o async for o in tiktok_client.search_orders(shop, order_status="AWAITING_SHIPMENT",
                                                          shipping_type="SELLER", update_time_ge=0)]
    assert len(found) == 250 and len({o.id for o in found}) == 250
    pages = [c for c in sandbox.app.state.api.call_log if c["path"] == "/order/202309/orders/search"]
    assert len(pages) == 3


async def test_429_storm_is_ridden_out_with_backoff(sandbox: Sandbox, tiktok_client: TikTokClient) -> None:
    shop = await sandbox.authorize(tiktok_client)
    order = sandbox.world.create_order({"shop_id": US_SHOP})
    await sandbox.control("POST", "/sandbox/faults", {"rate_limit_storm_s": 1.0})
    orders = await tiktok_client.get_order_detail(shop, [order["id"]])
    assert [o.id for o in orders] == [order["id"]]
    assert len(detail_calls(sandbox)) > 1  # it was refused at least once, then retried


async def test_expired_token_is_refreshed_once_and_the_call_retried(sandbox: Sandbox,
                                                                    tiktok_client: TikTokClient) -> None:
    shop = await sandbox.authorize(tiktok_client)
    order = sandbox.world.create_order({"shop_id": US_SHOP})
    refreshed: list[str] = []
    code = sandbox.world.issue_auth_code(US_SHOP)
    fresh = await tiktok_client.get_token(code)

    async def on_expired(shop_id: str) -> str:
        refreshed.append(shop_id)
        return (await tiktok_client.refresh_token(fresh.refresh_token)).access_token

    tiktok_client.on_token_expired = on_expired
    await sandbox.control("POST", f"/sandbox/shops/{US_SHOP}/tokens/expire")
    orders = await tiktok_client.get_order_detail(shop, [order["id"]])
    assert [o.id for o in orders] == [order["id"]] and refreshed == [US_SHOP]


async def test_expired_token_without_hook_raises_token_expired(sandbox: Sandbox, tiktok_client: TikTokClient) -> None:
    shop = await sandbox.authorize(tiktok_client)
    await sandbox.control("POST", f"/sandbox/shops/{US_SHOP}/tokens/expire")
    with pytest.raises(TokenExpired) as info:
        await tiktok_client.get_warehouses(shop)
    assert info.value.code == 105002 and info.value.request_id


async def test_wrong_secret_is_106001(sandbox: Sandbox, tiktok_client: TikTokClient) -> None:
    shop = await sandbox.authorize(tiktok_client)
    bad = TikTokClient(app_key=sandbox.config.app_key, app_secret="wrong", api_base=sandbox.base_url,
                       auth_base=sandbox.base_url)
    with pytest.raises(InvalidSignature) as info:
        await bad.get_warehouses(shop)
    assert info.value.code == 106001
    await bad.aclose()


async def test_stale_timestamp_is_36009004(sandbox: Sandbox, tiktok_client: TikTokClient) -> None:
    shop = await sandbox.authorize(tiktok_client)
    import time

    stale = TikTokClient(app_key=sandbox.config.app_key, app_secret=sandbox.config.app_secret,
                         api_base=sandbox.base_url, auth_base=sandbox.base_url, clock=lambda: time.time() - 600)
    with pytest.raises(OtherError) as info:
        await stale.get_warehouses(shop)
    assert info.value.code == 36009004
    await stale.aclose()


async def test_unknown_order_is_not_found(sandbox: Sandbox, tiktok_client: TikTokClient) -> None:
    shop = await sandbox.authorize(tiktok_client)
    with pytest.raises(NotFound):
        await tiktok_client.get_order_detail(shop, ["1"])


async def test_cipher_of_another_shop_is_permission_denied(sandbox: Sandbox, tiktok_client: TikTokClient) -> None:
    us = await sandbox.authorize(tiktok_client, US_SHOP)
    my = await sandbox.authorize(tiktok_client, MY_SHOP)
    with pytest.raises(PermissionDenied):
        await tiktok_client.get_warehouses(ShopAuth(US_SHOP, my.cipher, us.access_token))


# ---- narrow unit tests: the error envelope → exception mapping, Retry-After, the limiter ---------------------

def mock_client(answers: list[httpx.Response], delays: list[float], attempts: int = 1) -> TikTokClient:
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        return queue.pop(0)

    async def record_sleep(seconds: float) -> None:
        delays.append(seconds)

    return TikTokClient(app_key="k", app_secret="s", api_base="http://tt", auth_base="http://auth", qps=1e9,
                        transport=httpx.MockTransport(handler), retry=RetryPolicy(attempts=attempts),
                        sleep=record_sleep)


def answer(code: int, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "message": "m", "request_id": "req-1", "data": {}},
                          headers=headers)


@pytest.mark.parametrize(("response", "error"), [
    (answer(36009002, 429), RateLimited), (answer(0, 429), RateLimited), (answer(105002), TokenExpired),
    (answer(106001, 401), InvalidSignature), (answer(10006402), PermissionDenied), (answer(105005), PermissionDenied),
    (answer(21008111), NotFound), (answer(36009003, 500), Transient), (answer(0, 503), Transient),
    (answer(36009004), OtherError), (httpx.Response(502, content=b"<html>bad gateway</html>"), Transient),
    (answer(36009009), InvalidPath), (answer(36009010), InvalidPath), (answer(36009009, 404), InvalidPath),
    *[(answer(code), Transient) for code in (11001027, 11001031, 11006005, 11006026, 21001003, 21001008, 21001011,
                                             21001043, 21001055, 21008300, 21022029, 21022030, 21042001, 21042076)],
    (answer(21011050), OtherError),
])
async def test_error_codes_map_to_typed_exceptions(response: httpx.Response, error: type) -> None:
    client = mock_client([response], [])
    with pytest.raises(error) as info:
        await client.get_warehouses(ShopAuth("1", "c", "t"))
    assert type(info.value) is error
    await client.aclose()


async def test_shipping_writes_are_retried_by_the_client_like_reads_and_every_call_is_counted() -> None:
    delays: list[float] = []
    client = mock_client([answer(21001003), answer(21001003), answer(0)], delays, attempts=4)
    with counting_calls() as calls:
        await client.mark_package_shipped(ShopAuth("1", "c", "t"), "9", tracking_number="T", shipping_provider_id="p")
    assert (calls.calls, len(delays)) == (3, 2)
    await client.aclose()


async def test_the_policy_bounds_the_http_calls_and_the_last_error_is_raised() -> None:
    delays: list[float] = []
    client = mock_client([answer(21001003)] * 5, delays, attempts=3)
    with counting_calls() as calls, pytest.raises(Transient):
        await client.get_warehouses(ShopAuth("1", "c", "t"))
    assert (calls.calls, len(delays)) == (3, 2)
    await client.aclose()


def test_a_policy_without_any_attempt_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(attempts=0)


async def test_retry_after_is_honoured_and_retries_are_bounded() -> None:
    delays: list[float] = []
    client = mock_client([answer(36009002, 429, {"Retry-After": "3"}), answer(0)], delays, attempts=4)
    await client.get_warehouses(ShopAuth("1", "c", "t"))
    assert len(delays) == 1 and delays[0] >= 3
    delays.clear()
    failing = mock_client([answer(36009003, 500)] * 4, delays, attempts=4)
    with pytest.raises(Transient):
        await failing.get_warehouses(ShopAuth("1", "c", "t"))
    assert len(delays) == 3 and max(delays) <= 8.0


@pytest.mark.parametrize(("header", "expected"), [("86400", 60.0), ("inf", 60.0), ("-5", None), ("nan", None),
                                                  ("soon", None), ("2.5", 2.5)])
async def test_retry_after_is_capped_at_60_s(header: str, expected: float | None) -> None:
    delays: list[float] = []
    client = mock_client([answer(36009002, 429, {"Retry-After": header}), answer(0)], delays, attempts=2)
    await client.get_warehouses(ShopAuth("1", "c", "t"))
    if expected is None:
        assert delays[0] <= DEFAULT_RETRY.cap_s
    else:
        assert expected <= delays[0] <= max(expected, DEFAULT_RETRY.cap_s)
    await client.aclose()
    once = mock_client([answer(36009002, 429, {"Retry-After": header})], [])
    with pytest.raises(RateLimited) as info:
        await once.get_warehouses(ShopAuth("1", "c", "t"))
    assert info.value.retry_after == expected  # callers that schedule their own retry see the capped value too
    await once.aclose()


@pytest.mark.parametrize("variable", ["TIKTOK_API_BASE", "TIKTOK_AUTH_BASE"])
def test_plain_http_base_url_refuses_to_start_unless_the_sandbox_is_explicit(variable: str) -> None:
    with pytest.raises(ValidationError, match=f"{variable} must be an https:// URL.*TIKTOK_ALLOW_HTTP"):
        load_settings(**{variable.lower(): "http://127.0.0.1:8900", "tiktok_allow_http": False})
    allowed = load_settings(**{variable.lower(): "http://127.0.0.1:8900", "tiktok_allow_http": True})
    assert getattr(allowed, variable.lower()) == "http://127.0.0.1:8900"
    assert load_settings(**{variable.lower(): "HTTPS://open-api.example"}).tiktok_allow_http is False


async def test_timeouts_and_connection_errors_are_transient_and_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectTimeout("slow")
        if calls == 2:
            raise httpx.ConnectError("refused")
        return answer(0)

    async def no_sleep(_: float) -> None: ...

    client = TikTokClient(app_key="k", app_secret="s", api_base="http://tt", auth_base="http://a",
                          transport=httpx.MockTransport(handler), retry=RetryPolicy(attempts=3), sleep=no_sleep)
    await client.get_warehouses(ShopAuth("1", "c", "t"))
    assert calls == 3


async def test_limiter_spaces_requests_per_shop() -> None:
    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    limiter = RateLimiter(50, clock=lambda: now[0], sleep=fake_sleep)
    for _ in range(100):
        await limiter.acquire("shop-a")
    await limiter.acquire("shop-b")  # another shop is not held back
    assert len(slept) == 99
    assert max(slept) == pytest.approx(99 / 50)  # the 100th request goes out ~2 s after the first: 50/s
    assert slept == sorted(slept)

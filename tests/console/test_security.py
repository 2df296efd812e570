"""The console's security: sign-in, the session cookie, CSRF on every form, the read-only role, escaping."""

from __future__ import annotations

import re
import time

import orjson
import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from services.console.app import credentials_from
from services.console.auth import CSRF_COOKIE, SESSION_COOKIE, Signer, SignInThrottle
from tests.console.fakes import ADMIN_TOKEN, PASSWORD, READONLY, SHOP, console_app, console_settings


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def signed_in(client: TestClient, secret: str) -> str:
    """Sign in with `secret`; the CSRF token of the page after it."""
    token = csrf_of(client.get("/signin").text)
    answer = client.post("/signin", data={"csrf": token, "secret": secret, "next": "/stores"})
    assert answer.status_code == 200 and "Stores" in answer.text
    return csrf_of(answer.text)


def test_every_page_needs_sign_in_but_the_sign_in_page() -> None:
    app, *_ = console_app()
    client = TestClient(app)
    for path in ("/", "/stores", "/mappings", "/orders", "/orders/why-none", "/sync", "/operations",
                 "/mappings/export.csv"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/signin"), path
    assert client.get("/signin").status_code == 200
    assert client.post("/stores/connect", data={"nickname": "x"}).status_code == 403


@pytest.mark.parametrize("secret", [ADMIN_TOKEN, PASSWORD, READONLY])
def test_each_configured_secret_signs_in(secret: str) -> None:
    app, *_ = console_app()
    client = TestClient(app)
    signed_in(client, secret)
    assert client.get("/mappings").status_code == 200


def test_a_wrong_secret_is_refused_and_sets_no_session() -> None:
    app, *_ = console_app()
    client = TestClient(app)
    token = csrf_of(client.get("/signin").text)
    answer = client.post("/signin", data={"csrf": token, "secret": "guess", "next": "/"})
    assert answer.status_code == 401 and SESSION_COOKIE not in answer.cookies


def test_the_session_cookie_is_httponly_samesite_lax_expiring_and_secure_over_https() -> None:
    app, *_ = console_app()
    for base, secure in (("http://testserver", False), ("https://testserver", True)):
        client = TestClient(app, base_url=base)
        token = csrf_of(client.get("/signin").text)
        answer = client.post("/signin", data={"csrf": token, "secret": ADMIN_TOKEN, "next": "/"},
                             follow_redirects=False)
        cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=28800" in cookie
        assert ("Secure" in cookie) is secure


def test_an_expired_or_forged_session_is_signed_out() -> None:
    app, *_ = console_app()
    client = TestClient(app)
    signed_in(client, ADMIN_TOKEN)
    value = client.cookies[SESSION_COOKIE]
    client.cookies.set(SESSION_COOKIE, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert client.get("/stores", follow_redirects=False).status_code == 303
    signer = Signer(credentials_from(console_settings()).signing_key)
    expired = signer.sign(orjson.dumps({"role": "admin", "exp": int(time.time()) - 1}))
    client.cookies.set(SESSION_COOKIE, expired)
    assert client.get("/stores", follow_redirects=False).status_code == 303
    client.cookies.set(SESSION_COOKIE, signer.sign(orjson.dumps({"role": "admin", "exp": int(time.time()) + 60})))
    assert client.get("/stores", follow_redirects=False).status_code == 200


def test_sign_in_never_redirects_off_the_console() -> None:
    app, *_ = console_app()
    client = TestClient(app)
    token = csrf_of(client.get("/signin").text)
    answer = client.post("/signin", data={"csrf": token, "secret": ADMIN_TOKEN, "next": "//evil.example/"},
                         follow_redirects=False)
    assert answer.headers["location"] == "/"


def test_every_form_post_without_the_csrf_token_is_refused() -> None:
    app, stores, operator, api = console_app()
    client = TestClient(app)
    token = signed_in(client, ADMIN_TOKEN)
    posts = [r.path.replace("{shop_id}", SHOP) for r in app.routes
             if isinstance(r, Route) and "POST" in (r.methods or set())]
    assert len(posts) >= 10
    for path in posts:
        assert client.post(path, data={"nickname": "x"}).status_code == 403, path
        assert client.post(path, data={"csrf": token[:-1] + "x"}).status_code == 403, path
    assert stores.changes == [] and api.puts == [] and operator.redriven == 0
    # a token that is not this console's signed cookie does not count, even when form and cookie agree
    client.cookies.set(CSRF_COOKIE, "forged")
    assert client.post("/mappings/save", data={"csrf": "forged", "shop_id": SHOP, "seller_sku": "A",
                                               "product_code": "B"}).status_code == 403


def test_the_read_only_role_sees_everything_and_changes_nothing() -> None:
    app, stores, operator, api = console_app()
    client = TestClient(app)
    token = signed_in(client, READONLY)
    for path in ("/stores", "/mappings", "/orders?order_id=1", "/orders/why-none", "/sync", "/operations"):
        assert client.get(path).status_code == 200, path
    for path, data in (("/mappings/save", {"shop_id": SHOP, "seller_sku": "GREEN-L", "product_code": "X"}),
                       ("/mappings/preview", {"shop_id": SHOP, "seller_sku": "GREEN-L", "product_code": "X"}),
                       (f"/stores/{SHOP}/settings", {"auto_sync_orders": "on"}),
                       ("/stores/connect", {"nickname": "x"}),
                       ("/operations/redrive", {"confirm": "yes"})):
        answer = client.post(path, data={"csrf": token, **data})
        assert answer.status_code == 403 and "read-only" in answer.text, path
    assert stores.changes == [] and api.puts == [] and operator.redriven == 0
    assert client.post("/signout", data={"csrf": token}).status_code == 200  # signing out is no change


def test_the_admin_changes_with_the_token_and_output_is_escaped() -> None:
    app, stores, _, api = console_app()
    client = TestClient(app)
    token = signed_in(client, ADMIN_TOKEN)
    page = client.get("/stores").text
    assert "Main &lt;b&gt;store&lt;/b&gt;" in page and "<b>store</b>" not in page
    answer = client.post("/mappings/save", data={"csrf": token, "shop_id": SHOP, "seller_sku": "GREEN-L",
                                                 "product_code": "OMS-1"})
    assert answer.status_code == 200 and api.puts == [f"/mappings/{SHOP}/GREEN-L"]
    answer = client.post(f"/stores/{SHOP}/settings", data={"csrf": token, "auto_sync_orders": "on",
                                                           "inventory_buffer": "2"})
    assert answer.status_code == 200 and stores.changes[0][1].auto_sync_shipments is False


def test_pages_carry_a_content_security_policy() -> None:
    app, *_ = console_app()
    answer = TestClient(app).get("/signin")
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"


def test_the_sync_page_lists_failures_first_and_a_products_stock() -> None:
    app, *_ = console_app()
    client = TestClient(app)
    signed_in(client, READONLY)
    page = client.get("/sync?product_code=OMS-1").text
    assert page.index("shipment:x") < page.index("OMS-1</td>") and "fix &lt;it&gt;" in page
    assert "OMS available 7" in page and "RED-S" in page


def test_update_store_orders_follows_the_search_on_its_own_page() -> None:
    app, *_ = console_app()
    client = TestClient(app)
    token = signed_in(client, ADMIN_TOKEN)
    answer = client.post(f"/stores/{SHOP}/update-orders", data={"csrf": token})
    assert str(answer.url).endswith("/stores/updates/job1") and "Found 3 orders of the last 24 hours" in answer.text
    assert client.get("/stores/updates/nope").status_code == 404


def test_five_wrong_secrets_lock_sign_in_from_that_address_even_for_the_right_one() -> None:
    app, *_ = console_app()
    client = TestClient(app)
    token = csrf_of(client.get("/signin").text)
    for _ in range(5):
        assert client.post("/signin", data={"csrf": token, "secret": "guess", "next": "/"}).status_code == 401
    answer = client.post("/signin", data={"csrf": token, "secret": ADMIN_TOKEN, "next": "/"}, follow_redirects=False)
    assert answer.status_code == 429 and SESSION_COOKIE not in answer.cookies
    assert 1 <= int(answer.headers["retry-after"]) <= 60 and "Too many wrong sign-ins" in answer.text


def test_the_throttle_forgets_failures_after_the_window_and_after_a_success() -> None:
    now = [1000.0]
    throttle = SignInThrottle(limit=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 60 and throttle.retry_after("10.0.0.2") == 0
    now[0] += 59.5
    assert throttle.retry_after("10.0.0.1") == 1
    now[0] += 1
    assert throttle.retry_after("10.0.0.1") == 0
    throttle.failed("10.0.0.1"), throttle.failed("10.0.0.1")
    throttle.succeeded("10.0.0.1")
    throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 0


def test_the_throttle_remembers_a_bounded_number_of_addresses() -> None:
    throttle = SignInThrottle(limit=1, window_s=60, tracked=2)
    for address in ("a", "b", "c"):
        throttle.failed(address)
    assert [throttle.retry_after(a) > 0 for a in ("a", "b", "c")] == [False, True, True]

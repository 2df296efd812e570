"""Signature verification: only the exact lowercase hex HMAC over app_key + raw body gets in."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from services.webhook_gateway.app import MissingSecrets, create_app
from shared.settings import Settings
from shared.tiktok.signing import webhook_signature
from tests.fakes import MemoryPublisher
from tests.sandbox import APP_KEY, APP_SECRET
from tests.webhooks import published_webhooks, sign, webhook_body


async def test_correct_signature_is_accepted_and_published(unit_client: httpx.AsyncClient,
                                                           memory_publisher: MemoryPublisher) -> None:
    body = webhook_body()
    response = await unit_client.post("/webhooks/tiktok", content=body, headers=sign(body))
    assert response.status_code == 200 and response.content == b""
    assert [r[1] for r in memory_publisher.records] == [body]


def _bad_headers(body: bytes) -> dict[str, dict[str, str]]:
    good = webhook_signature(APP_KEY, APP_SECRET, body)
    return {
        "wrong_secret": {"Authorization": webhook_signature(APP_KEY, "other", body)},
        "wrong_app_key": {"Authorization": webhook_signature("other-key", APP_SECRET, body)},
        "missing": {},
        "empty": {"Authorization": ""},
        "upper_case": {"Authorization": good.upper()},
        "bearer_prefix": {"Authorization": "Bearer " + good},
        "truncated": {"Authorization": good[:-1]},
    }


@pytest.mark.parametrize("case", list(_bad_headers(b"x")))
async def test_bad_signature_is_rejected_with_empty_401_and_nothing_published(
        case: str, unit_client: httpx.AsyncClient, memory_publisher: MemoryPublisher) -> None:
    body = webhook_body()
    response = await unit_client.post("/webhooks/tiktok", content=body, headers=_bad_headers(body)[case])
    assert response.status_code == 401 and response.content == b""
    assert memory_publisher.records == []


async def test_flipping_any_byte_of_the_body_is_rejected(unit_client: httpx.AsyncClient,
                                                         memory_publisher: MemoryPublisher) -> None:
    body = webhook_body()
    headers = sign(body)
    for i in range(len(body)):
        tampered = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1:]
        response = await unit_client.post("/webhooks/tiktok", content=tampered, headers=headers)
        assert response.status_code == 401, i
    assert memory_publisher.records == []


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(min_size=1, max_size=300), flip=st.integers(min_value=0))
async def test_property_any_change_to_a_signed_body_is_rejected(unit_client: httpx.AsyncClient,
                                                                memory_publisher: MemoryPublisher,
                                                                body: bytes, flip: int) -> None:
    headers = sign(body)
    i = flip % len(body)
    tampered = body[:i] + bytes([(body[i] + 1) % 256]) + body[i + 1:]
    response = await unit_client.post("/webhooks/tiktok", content=tampered, headers=headers)
    assert response.status_code == 401
    assert memory_publisher.records == []


async def test_previous_secret_is_accepted_during_rotation(gateway_settings: Settings) -> None:
    secret = gateway_settings.tiktok_app_secret
    rotated = gateway_settings.model_copy(update={"tiktok_app_secret": type(secret)("new-secret"),
                                                  "tiktok_app_secret_previous": secret})
    publisher = MemoryPublisher()
    app = create_app(rotated, publisher)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        body = webhook_body()
        old = await client.post("/webhooks/tiktok", content=body, headers=sign(body, APP_SECRET))
        new = await client.post("/webhooks/tiktok", content=body, headers=sign(body, "new-secret"))
        other = await client.post("/webhooks/tiktok", content=body, headers=sign(body, "unknown"))
    assert (old.status_code, new.status_code, other.status_code) == (200, 200, 401)
    assert len(publisher.records) == 2


@pytest.mark.parametrize("missing", ["tiktok_app_key", "tiktok_app_secret"])
def test_gateway_refuses_to_start_without_secrets(gateway_settings: Settings, missing: str) -> None:
    value = "" if missing == "tiktok_app_key" else type(gateway_settings.tiktok_app_secret)("")
    with pytest.raises(MissingSecrets):
        create_app(gateway_settings.model_copy(update={missing: value}), MemoryPublisher())


async def test_bad_signatures_publish_nothing_to_the_real_topic(settings: Settings, gateway: httpx.AsyncClient) -> None:
    body = webhook_body(notification_id="only-good-one")
    for headers in _bad_headers(body).values():
        assert (await gateway.post("/webhooks/tiktok", content=body, headers=headers)).status_code == 401
    assert (await gateway.post("/webhooks/tiktok", content=body, headers=sign(body))).status_code == 200
    assert [r.value for r in await published_webhooks(settings)] == [body]

"""Size limit and envelope validation: precise 4xx answers with machine-readable codes."""

from __future__ import annotations

import json
import time

import httpx
import orjson
import pytest

from services.webhook_gateway.app import create_app
from shared.settings import Settings
from tests.fakes import MemoryPublisher
from tests.webhooks import sign, webhook_body


async def test_body_one_byte_over_the_limit_is_413(gateway_settings: Settings) -> None:
    body = webhook_body()
    small = gateway_settings.model_copy(update={"shopsync_max_webhook_bytes": len(body)})
    publisher = MemoryPublisher()
    app = create_app(small, publisher)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        at_limit = await client.post("/webhooks/tiktok", content=body, headers=sign(body))
        over = body[:-1] + b' }'
        over_limit = await client.post("/webhooks/tiktok", content=over, headers=sign(over))

        async def chunks():  # streamed without Content-Length: the limit holds while reading
            yield over[:10]
            yield over[10:]

        streamed = await client.post("/webhooks/tiktok", content=chunks(), headers=sign(over))
    assert at_limit.status_code == 200
    assert over_limit.status_code == 413 and over_limit.json()["error"] == "payload_too_large"
    assert streamed.status_code == 413
    assert len(publisher.records) == 1


def _doc(**changes: object) -> dict:
    doc = orjson.loads(webhook_body())
    for key, value in changes.items():
        if value is _DROP:
            doc.pop(key)
        else:
            doc[key] = value
    return doc


_DROP = object()
NOW = int(time.time())

CASES = {
    "invalid_json": (b'{"type": 1,', "invalid_json"),
    "invalid_utf8": (b'{"type": 1, "shop_id": "\xff"}', "invalid_json"),
    "array": (b"[1, 2]", "not_an_object"),
    "string": (b'"hello"', "not_an_object"),
    "missing_type": (_doc(type=_DROP), "missing_field"),
    "type_as_string": (_doc(type="1"), "invalid_field"),
    "type_as_bool": (_doc(type=True), "invalid_field"),
    "type_huge": (_doc(type=10**30), "invalid_field"),
    "missing_shop_id": (_doc(shop_id=_DROP), "missing_field"),
    "shop_id_as_int": (_doc(shop_id=123), "invalid_field"),
    "shop_id_empty": (_doc(shop_id=" "), "invalid_field"),
    "missing_timestamp": (_doc(timestamp=_DROP), "missing_field"),
    "timestamp_as_float": (_doc(timestamp=1.5), "invalid_field"),
    "timestamp_in_ms": (_doc(timestamp=NOW * 1000), "future_event"),
    "missing_data": (_doc(data=_DROP), "missing_field"),
    "data_as_list": (_doc(data=[]), "invalid_field"),
    "notification_id_as_int": (_doc(tts_notification_id=5), "invalid_field"),
    "stale": (_doc(timestamp=NOW - 49 * 3600), "stale_event"),
    "future": (_doc(timestamp=NOW + 3600), "future_event"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_bad_envelope_is_400_with_machine_code(case: str, unit_client: httpx.AsyncClient,
                                                     memory_publisher: MemoryPublisher) -> None:
    payload, code = CASES[case]
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    response = await unit_client.post("/webhooks/tiktok", content=body, headers=sign(body))
    assert response.status_code == 400
    assert response.json()["error"] == code
    assert response.json()["detail"]
    assert memory_publisher.records == []


async def test_deeply_nested_json_is_rejected_not_crashing(unit_client: httpx.AsyncClient) -> None:
    body = b'{"type":1,"shop_id":"1","timestamp":1,"data":' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = await unit_client.post("/webhooks/tiktok", content=body, headers=sign(body))
    assert response.status_code == 400


async def test_unknown_event_types_are_accepted(unit_client: httpx.AsyncClient,
                                                memory_publisher: MemoryPublisher) -> None:
    body = webhook_body(event_type=999, order_id=None)
    assert (await unit_client.post("/webhooks/tiktok", content=body, headers=sign(body))).status_code == 200
    headers = dict(memory_publisher.records[0][2])
    assert headers["ce_type"] == b"tiktok.shop.type_999"
    assert memory_publisher.records[0][0] == b"7494049642642441621"


async def test_publish_failure_is_503_with_retry_after(unit_client: httpx.AsyncClient,
                                                       memory_publisher: MemoryPublisher) -> None:
    memory_publisher.fail = True
    body = webhook_body()
    response = await unit_client.post("/webhooks/tiktok", content=body, headers=sign(body))
    assert response.status_code == 503 and response.headers["retry-after"]
    assert (await unit_client.get("/readyz")).status_code == 503
    assert (await unit_client.get("/healthz")).status_code == 200


async def test_metrics_count_results(unit_client: httpx.AsyncClient) -> None:
    body = webhook_body()
    await unit_client.post("/webhooks/tiktok", content=body, headers=sign(body))
    await unit_client.post("/webhooks/tiktok", content=body, headers={"Authorization": "nope"})
    text = (await unit_client.get("/metrics")).text
    assert 'gateway_requests_total{result="published"} 1.0' in text
    assert 'gateway_requests_total{result="bad_signature"} 1.0' in text
    assert "gateway_signature_failures_total 1.0" in text
    assert "gateway_publish_seconds_bucket" in text


@pytest.mark.parametrize(("offset", "status"), [(300, 200), (301, 400), (-48 * 3600, 200), (-48 * 3600 - 1, 400)])
async def test_time_window_edges_with_a_fixed_clock(gateway_settings: Settings, offset: int, status: int) -> None:
    now = 1_800_000_000
    publisher = MemoryPublisher()
    app = create_app(gateway_settings, publisher, clock=lambda: float(now))
    body = webhook_body(timestamp=now + offset)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        answer = await client.post("/webhooks/tiktok", content=body, headers=sign(body))
    assert answer.status_code == status


@pytest.mark.parametrize(("content_type", "body", "status"), [
    ("text/plain", None, 200),  # the signature covers the raw bytes: the declared type cannot smuggle anything
    ("application/x-www-form-urlencoded", b"type=1&shop_id=1&timestamp=1&data=x", 400),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--", 400),
    ("application/json; charset=latin-1", b'{"type":1,"shop_id":"\xe9","timestamp":1,"data":{}}', 400),
])
async def test_wrong_content_types_are_judged_by_the_signed_bytes(unit_client: httpx.AsyncClient,
                                                                  memory_publisher: MemoryPublisher,
                                                                  content_type: str, body: bytes | None,
                                                                  status: int) -> None:
    payload = body if body is not None else webhook_body()
    headers = {**sign(payload), "Content-Type": content_type}
    answer = await unit_client.post("/webhooks/tiktok", content=payload, headers=headers)
    assert answer.status_code == status
    assert len(memory_publisher.records) == (1 if status == 200 else 0)

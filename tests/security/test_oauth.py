"""SASL/OAUTHBEARER: client-credentials tokens, reused until they expire, and a real login to the secured broker."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
import orjson
import pytest
from aiokafka.errors import SaslAuthenticationFailed
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.kafka import create_managed_producer, read_to_end
from shared.kafka_security import ClientCredentialsTokenProvider, KafkaAuthenticationFailed
from shared.topics import DLQ, topic_name
from shopsync.localkafka import SecuredLocalKafka
from shopsync.topic_admin import ensure_topics
from tests.servers import serve_app

CLIENT_ID, CLIENT_SECRET = "shopsync-client", "client-secret"


def unsigned_jwt(subject: str, lifetime_s: int) -> str:
    """What Kafka's development validator accepts: `alg: none`, a subject and an expiry."""
    now = int(time.time())
    parts = [{"alg": "none"}, {"sub": subject, "iat": now, "exp": now + lifetime_s}]
    return ".".join(base64.urlsafe_b64encode(orjson.dumps(p)).rstrip(b"=").decode() for p in parts) + "."


def token_endpoint(issued: list[str], lifetime_s: int = 3600) -> Starlette:
    """An OAuth token endpoint for one client (client-credentials grant, HTTP Basic client authentication)."""
    expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()

    async def token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if request.headers.get("authorization") != expected or form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        issued.append(form.get("scope", ""))
        return JSONResponse({"access_token": unsigned_jwt(CLIENT_ID, lifetime_s), "token_type": "bearer",
                             "expires_in": lifetime_s})

    return Starlette(routes=[Route("/token", token, methods=["POST"])])


def provider(app: Starlette, secret: str = CLIENT_SECRET,
             clock: Callable[[], float] = time.monotonic) -> ClientCredentialsTokenProvider:
    return ClientCredentialsTokenProvider("http://auth/token", CLIENT_ID, secret, scope="kafka",
                                          transport=httpx.ASGITransport(app=app), clock=clock)


async def test_a_token_is_reused_until_shortly_before_it_expires() -> None:
    issued: list[str] = []
    now = [1000.0]
    tokens = provider(token_endpoint(issued, lifetime_s=120), clock=lambda: now[0])
    first = await tokens.token()
    now[0] += 80
    assert await tokens.token() == first and issued == ["kafka"]
    now[0] += 20  # inside the 30 s margin before expiry
    await tokens.token()
    assert issued == ["kafka", "kafka"]


async def test_a_refused_token_request_is_an_authentication_failure() -> None:
    with pytest.raises(SaslAuthenticationFailed, match="answered 401"):
        await provider(token_endpoint([]), secret="wrong").token()


@pytest.mark.secured
async def test_oauthbearer_login_to_the_secured_broker(secured_broker: SecuredLocalKafka, topic_prefix: str) -> None:
    issued: list[str] = []
    async with serve_app(token_endpoint(issued)) as auth:
        oauth = {"kafka_sasl_mechanism": "OAUTHBEARER", "kafka_sasl_username": CLIENT_ID,
                 "kafka_sasl_oauth_token_url": f"{auth}/token", "shopsync_topic_prefix": topic_prefix}
        settings = secured_broker.client_settings(kafka_sasl_password=CLIENT_SECRET, **oauth)
        assert (await ensure_topics(settings)).problems == []
        producer = create_managed_producer(settings, "oauth")
        await producer.start()
        try:
            await producer.send_and_wait(topic_name(DLQ, topic_prefix), b"with a token")
        finally:
            await producer.stop()
        assert [r.value async for r in read_to_end(settings, DLQ)] == [b"with a token"]
        assert issued

        with pytest.raises(KafkaAuthenticationFailed, match=r"OAuth token endpoint .* answered 401"):
            await ensure_topics(secured_broker.client_settings(kafka_sasl_password="wrong", **oauth))

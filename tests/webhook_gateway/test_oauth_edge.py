"""The OAuth callback refuses cheaply: throttled per client, and no Kafka work before a state is known pending."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from services.webhook_gateway import oauth
from services.webhook_gateway.pending_links import PendingLinks, well_formed_state
from services.webhook_gateway.throttle import ClientThrottle
from services.webhook_gateway.wiring import build_app
from shared.kafka import create_producer
from shared.settings import Settings, load_settings
from shared.stores import table
from shared.stores.crypto import generate_key
from shared.stores.linking import new_pending_link
from shared.stores.model import StoreRecord
from shared.stores.table import StoreWriter
from tests.sandbox import APP_KEY, APP_SECRET

CALLBACK = "/oauth/tiktok/callback"
WELL_FORMED = "A" * 32


@pytest.fixture
def kafka_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every Kafka client the callback or the store table creates from now on."""
    calls: list[str] = []

    def counting(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def create(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return real(*args, **kwargs)
        return create

    monkeypatch.setattr(oauth, "create_producer", counting("producer", oauth.create_producer))
    monkeypatch.setattr(table, "create_consumer", counting("consumer", table.create_consumer))
    monkeypatch.setattr(table, "read_to_end", counting("read_to_end", table.read_to_end))
    return calls


def unit_settings() -> Settings:
    return load_settings(tiktok_app_key=APP_KEY, tiktok_app_secret=APP_SECRET, shopsync_secret_key=generate_key())


def callback_client(links: PendingLinks, throttle: ClientThrottle | None = None,
                    client: tuple[str, int] = ("203.0.113.7", 4000)) -> httpx.AsyncClient:
    """The callback alone (no lifespan: nothing follows the table, the test fills `links`)."""
    routes = oauth.oauth_routes(unit_settings(), links=links, throttle=throttle, pending_wait_s=0.05)
    transport = httpx.ASGITransport(app=Starlette(routes=routes), client=client)
    return httpx.AsyncClient(transport=transport, base_url="http://gw")


def pending_record(state: str) -> StoreRecord:
    record, _ = new_pending_link(load_settings(), "Main store")
    record.state = state
    return record


def put(links: PendingLinks, record: StoreRecord | None, state: str) -> None:
    links.apply(f"pending:{state}".encode(), None if record is None else orjson.dumps(record.to_dict()))


@pytest.mark.parametrize(("params", "title"), [
    ({"code": "c", "state": "nope"}, "Unknown or used link"),
    ({"code": "c", "state": "A" * 31 + "!"}, "Unknown or used link"),
    ({"code": "c", "state": WELL_FORMED}, "Unknown or used link"),  # well-formed, not pending: waited for, briefly
    ({"state": WELL_FORMED}, "Invalid link"),
    ({"code": "c"}, "Invalid link"),
])
async def test_malformed_and_unknown_states_get_400_without_kafka(kafka_calls: list[str], params: dict[str, str],
                                                                   title: str) -> None:
    async with callback_client(PendingLinks()) as http:
        page = await http.get(CALLBACK, params=params)
    assert page.status_code == 400 and title in page.text
    assert kafka_calls == []


async def test_a_burst_beyond_the_limit_gets_429_with_retry_after(kafka_calls: list[str]) -> None:
    links, throttle = PendingLinks(), ClientThrottle(burst=3, per_s=0.1)
    async with callback_client(links, throttle) as http:
        answers = [await http.get(CALLBACK, params={"code": "c", "state": "nope"}) for _ in range(5)]
    assert [a.status_code for a in answers] == [400, 400, 400, 429, 429]
    assert 1 <= int(answers[3].headers["retry-after"]) <= 10 and "Too many" in answers[3].text
    async with callback_client(links, throttle, client=("198.51.100.9", 4000)) as other:
        assert (await other.get(CALLBACK, params={"code": "c", "state": "nope"})).status_code == 400
    assert kafka_calls == []


def test_the_throttle_refills_and_forgets_the_oldest_clients() -> None:
    now = [0.0]
    throttle = ClientThrottle(burst=2, per_s=0.5, max_clients=2, clock=lambda: now[0])
    assert [throttle.retry_after("a") for _ in range(3)] == [0, 0, 2.0]
    now[0] = 2.0
    assert throttle.retry_after("a") == 0 and throttle.retry_after("a") == 2.0
    throttle.retry_after("b")
    throttle.retry_after("c")  # "a" is the least recently seen of three: dropped, so it starts full again
    assert throttle.retry_after("a") == 0


def test_states_from_stores_link_and_shop_choices_are_well_formed() -> None:
    for _ in range(200):  # `new_pending_link` and `complete_link` (a shop choice) make them this way
        assert well_formed_state(new_pending_link(load_settings(), "x")[0].state)
        assert well_formed_state(secrets.token_urlsafe(24))
    assert not well_formed_state("") and not well_formed_state("x" * 33)


async def test_a_state_written_just_before_the_callback_is_waited_for() -> None:
    links = PendingLinks()
    waiting = asyncio.ensure_future(links.wait_for(WELL_FORMED, 2.0))
    await asyncio.sleep(0)  # one turn of the loop: the callback's lookup is now waiting for the follower
    assert not waiting.done()
    put(links, pending_record(WELL_FORMED), WELL_FORMED)
    found = await asyncio.wait_for(waiting, 1.0)
    assert found is not None and found.state == WELL_FORMED


async def test_a_used_state_stays_used_until_its_tombstone_even_if_replayed() -> None:
    links = PendingLinks()
    record = pending_record(WELL_FORMED)
    put(links, record, WELL_FORMED)
    assert await links.wait_for(WELL_FORMED, 0) is not None
    links.take(WELL_FORMED)
    put(links, record, WELL_FORMED)  # the follower restarted and replays the topic
    assert await links.wait_for(WELL_FORMED, 1.0) is None  # at once: no waiting for a state known used
    put(links, None, WELL_FORMED)
    assert links.pending == {}


# ---- against the broker: the gateway follows the store table; requests read nothing --------------------------

@pytest.fixture
async def linking_gateway(settings: Settings) -> AsyncIterator[tuple[Settings, httpx.AsyncClient]]:
    s = settings.model_copy(update={"shopsync_secret_key": type(settings.shopsync_secret_key)(generate_key())})
    app = build_app(s, extra_routes=oauth.oauth_routes(s))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        yield s, client


async def test_the_gateway_answers_from_its_followed_view_and_reads_nothing_per_request(
        linking_gateway: tuple[Settings, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch) -> None:
    settings, http = linking_gateway
    record, _ = new_pending_link(settings, "Old", "", now=time.time() - 3600)
    producer = create_producer(settings)
    await producer.start()
    try:
        await StoreWriter(producer, settings).put(record)
    finally:
        await producer.stop()
    calls: list[str] = []

    def counted_producer(s: Settings) -> Any:
        calls.append("producer")
        return create_producer(s)

    monkeypatch.setattr(oauth, "create_producer", counted_producer)
    monkeypatch.setattr(table, "create_consumer", lambda *a, **k: calls.append("consumer"))
    monkeypatch.setattr(table, "read_to_end", lambda *a, **k: calls.append("read_to_end"))

    for state in ("nope", WELL_FORMED):
        page = await http.get(CALLBACK, params={"code": "c", "state": state})
        assert page.status_code == 400 and "unknown or was already used" in page.text
    assert calls == []
    expired = await http.get(CALLBACK, params={"code": "c", "state": record.state})  # the follower brought it
    assert expired.status_code == 400 and "expired" in expired.text
    assert calls == ["producer"]  # only for the tombstone of a state known pending
    again = await http.get(CALLBACK, params={"code": "c", "state": record.state})
    assert again.status_code == 400 and "already used" in again.text
    assert calls == ["producer"]

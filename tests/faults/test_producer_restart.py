"""The broker goes away under steady webhook traffic (stopped gracefully, or killed -9) and comes back on the same
data: the gateway (a real process) answers 503 and is not ready meanwhile, answers 200 again soon after the
broker is back (its wedged idempotent producer is replaced), and every webhook it answered 200 for is on the
topic."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from shared.settings import Settings, load_settings
from shared.topics import TIKTOK_WEBHOOKS
from shopsync.localkafka import LocalKafka
from shopsync.topic_admin import ensure_topics
from tests.faults.conftest import Service, settings_env
from tests.sandbox import APP_KEY, APP_SECRET
from tests.servers import free_port
from tests.topicview import TopicView
from tests.waiting import eventually
from tests.webhooks import sign, webhook_body

CLIENTS = 8
PAUSE_S = 0.3  # per client: ~25 webhooks/s in all while the broker answers
RECOVERY_DEADLINE_S = 15.0
OUTAGE_S = 10.0  # the broker stays away at least this long: sends fail meanwhile, which is what wedges a producer


@pytest.fixture
def restart_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    broker = LocalKafka(home=tmp_path / "k", port=19696, controller_port=19697, heap="384m")
    broker.start()
    yield broker
    broker.stop()


@dataclass
class Traffic:
    """Signed webhooks from several clients, each answer recorded with the time it came back."""

    url: str
    answers: list[tuple[float, str, int]] = field(default_factory=list)  # (time, order id, status)
    ready: list[tuple[float, int, str]] = field(default_factory=list)  # (time, /readyz status, body)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(576461413038000000))

    async def client(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            while not self.stop.is_set():
                order_id = str(next(self._ids))
                body = webhook_body(order_id, notification_id=f"n{order_id}")
                try:
                    status = (await http.post("/webhooks/tiktok", content=body, headers=sign(body))).status_code
                except httpx.HTTPError:
                    status = 0
                self.answers.append((time.monotonic(), order_id, status))
                await asyncio.sleep(PAUSE_S)

    async def probe(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as http:
            while not self.stop.is_set():
                try:
                    answer = await http.get("/readyz")
                    self.ready.append((time.monotonic(), answer.status_code, answer.text))
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)

    async def until(self, predicate: Callable[[], bool], within: float, what: str) -> float:
        """Wait until `predicate()` holds; returns when it did."""
        await eventually(predicate, within=within, what=lambda: f"{what}; answers so far: {self.summary()}")
        return time.monotonic()

    def summary(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for _, _, status in self.answers:
            counts[status] = counts.get(status, 0) + 1
        return counts


def gateway_settings(broker: LocalKafka, prefix: str) -> Settings:
    return load_settings(kafka_bootstrap_servers=broker.bootstrap, shopsync_topic_prefix=prefix,
                         tiktok_app_key=APP_KEY, tiktok_app_secret=APP_SECRET, shopsync_publish_timeout_s=2.5)


@pytest.mark.parametrize("outage", ["graceful_stop", "kill_9"])
async def test_gateway_answers_200_again_after_the_broker_comes_back(restart_broker: LocalKafka, tmp_path: Path,
                                                                     outage: str) -> None:
    settings = gateway_settings(restart_broker, f"wedge-{outage}.")
    await ensure_topics(settings)
    port = free_port()
    gateway = Service(["gateway", "--port", str(port)], settings_env(settings), f"http://127.0.0.1:{port}/readyz",
                      tmp_path / "gateway.log")
    await gateway.start()
    traffic = Traffic(f"http://127.0.0.1:{port}")
    tasks = [asyncio.create_task(traffic.client()) for _ in range(CLIENTS)] + [asyncio.create_task(traffic.probe())]
    try:
        await traffic.until(lambda: traffic.summary().get(200, 0) >= 50, 30, "50 webhooks answered 200")
        down_at = time.monotonic()
        await asyncio.to_thread(restart_broker.stop if outage == "graceful_stop" else restart_broker.kill)
        await traffic.until(lambda: any(t > down_at and s == 503 for t, _, s in traffic.answers), 30,
                            "a 503 while the broker is down")
        await traffic.until(lambda: any(t > down_at and s == 503 for t, s, _ in traffic.ready), 30,
                            "/readyz 503 while the broker is down")
        await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))  # the fault, not a wait
        await asyncio.to_thread(restart_broker.start)
        back_at = time.monotonic()
        first_200 = await traffic.until(lambda: any(t > back_at and s == 200 for t, _, s in traffic.answers),
                                        RECOVERY_DEADLINE_S, "a 200 after the broker came back")
        await traffic.until(lambda: any(t > first_200 and s == 200 for t, s, _ in traffic.ready),
                            RECOVERY_DEADLINE_S, "/readyz 200 after the broker came back")
        recovered_at = time.monotonic()
        await traffic.until(lambda: sum(1 for t, _, s in traffic.answers if t > recovered_at and s == 200) >= 50,
                            30, "50 more webhooks answered 200")
        # every webhook answered 200 since recovery: the replaced producer is not wedged again
        assert {s for t, _, s in traffic.answers if t > recovered_at + 1} == {200}
    finally:
        traffic.stop.set()
        await asyncio.gather(*tasks)
        gateway.stop()
    acknowledged = {order_id for _, order_id, status in traffic.answers if status == 200}
    async with TopicView(settings, TIKTOK_WEBHOOKS) as view:
        def has_all(records: list[Any]) -> bool:
            return {orjson.loads(r.value)["data"]["order_id"] for r in records} >= acknowledged
        await view.until(has_all, within=60)
    restarts = [line for line in (tmp_path / "gateway.log").read_text().splitlines()
                if "kafka_producer_restarted" in line]
    print(f"{outage}: recovered {first_200 - back_at:.1f}s after the broker answered; {traffic.summary()}; "
          f"producer restarts: {len(restarts)}")

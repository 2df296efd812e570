"""A broker of a three-node cluster fails under steady webhook traffic (killed -9, or a rolling restart with SIGTERM):
the topics are RF 3 with min.insync.replicas 2, so every webhook the gateway (a real process) answered 200 for is
on `tiktok.webhooks` afterwards, what could not be acknowledged was answered 503, and the gateway answers 200 again
once the broker is back. The figures are printed and written to bench/results/broker_failover.json."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from bench.common import RESULTS, machine
from shared.kafka import create_admin, read_to_end
from shared.settings import Settings
from shared.topics import TIKTOK_WEBHOOKS, TOPICS, topic_name
from shopsync.localcluster import LocalCluster
from shopsync.topic_admin import ensure_topics
from tests.cluster.conftest import APP_SECRET, GATEWAY_PORT, busiest_leader, cluster_settings, fully_replicated
from tests.faults.conftest import Service, settings_env
from tests.sandbox import APP_KEY
from tests.waiting import eventually
from tests.webhooks import sign, webhook_body

pytestmark = pytest.mark.cluster

CLIENTS = 8
PAUSE_S = 0.3  # per client: ~25 webhooks/s in all while the cluster answers
STEADY_200S = 50  # a run of consecutive 200s that counts as "recovered"
RESULT_FILE = RESULTS / "broker_failover.json"


@dataclass(frozen=True, slots=True)
class Answer:
    sent_at: float
    answered_at: float
    notification_id: str
    status: int  # 0: no HTTP answer at all


@dataclass
class Traffic:
    """Signed webhooks from several clients; every answer recorded with when it was sent and answered."""

    url: str
    answers: list[Answer] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(576461413039000000))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Traffic]:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(self._client(stop)) for _ in range(CLIENTS)]
        try:
            yield self
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    async def _client(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            while not stop.is_set():
                order_id = str(next(self._ids))
                body = webhook_body(order_id, notification_id=f"n{order_id}")
                headers = sign(body, APP_SECRET, APP_KEY)
                sent_at = time.monotonic()
                try:
                    status = (await http.post("/webhooks/tiktok", content=body, headers=headers)).status_code
                except httpx.HTTPError:
                    status = 0
                self.answers.append(Answer(sent_at, time.monotonic(), f"n{order_id}", status))
                await asyncio.sleep(PAUSE_S)

    def count(self, status: int, sent_after: float = 0.0) -> int:
        return sum(1 for a in self.answers if a.status == status and a.sent_at >= sent_after)

    def steady(self, sent_after: float) -> bool:
        """The last STEADY_200S answers were all 200, for requests sent after `sent_after`."""
        tail = sorted((a for a in self.answers if a.sent_at >= sent_after), key=lambda a: a.answered_at)
        return len(tail) >= STEADY_200S and all(a.status == 200 for a in tail[-STEADY_200S:])

    def first_200(self, sent_after: float) -> float | None:
        return min((a.answered_at for a in self.answers if a.status == 200 and a.sent_at >= sent_after), default=None)

    def last_503(self, sent_after: float) -> float | None:
        return max((a.answered_at for a in self.answers if a.status == 503 and a.sent_at >= sent_after), default=None)

    async def until(self, predicate: Callable[[], bool], within: float, what: str) -> float:
        """Wait until `predicate()` holds; returns when it did."""
        await eventually(predicate, within=within, every=0.1,
                         what=lambda: f"{what}; answers so far: {self.statuses()}")
        return time.monotonic()

    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for a in self.answers:
            counts[a.status] = counts.get(a.status, 0) + 1
        return counts


async def min_insync(settings: Settings, topic: str) -> str | None:
    """The topic's `min.insync.replicas` as the cluster reports it (None while its config is not readable)."""
    admin = create_admin(settings)
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        config = {e[0]: e[1] for r in responses for res in r.resources if not res[0] for e in res[4]}
        return config.get("min.insync.replicas")
    finally:
        await admin.close()


async def fail_and_restart(cluster: LocalCluster, traffic: Traffic, topic: str, node_id: int, outage: str,
                           started: float) -> dict[str, Any]:
    """Take `node_id` down (SIGKILL or SIGTERM) mid-traffic, check writes go on, start it again; the step's figures."""
    led = sum(1 for p in await cluster.partitions(topic) if p.leader == node_id)
    fault_at = time.monotonic()
    await (cluster.kill_node(node_id) if outage == "kill_9" else cluster.stop_node(node_id))

    async def moved_away() -> bool:
        return all(p.leader not in (node_id, -1) and node_id not in p.isr for p in await cluster.partitions(topic))
    await eventually(moved_away, within=60, every=0.1, what=f"the partitions of node {node_id} led by the others")
    moved_at = time.monotonic()
    await traffic.until(lambda: traffic.count(200, sent_after=moved_at) >= 20, 30,
                        f"20 webhooks answered 200 while node {node_id} is down")
    back_at = await cluster.start_node(node_id)

    async def in_sync() -> bool:
        return all(set(p.isr) == set(p.replicas) for p in await cluster.partitions(topic))
    await eventually(in_sync, within=60, every=0.1, what=f"node {node_id} back in every ISR")
    in_sync_at = time.monotonic()
    first_200 = await traffic.until(lambda: traffic.first_200(back_at) is not None, 30,
                                    f"a 200 after node {node_id} came back")
    last_503 = traffic.last_503(fault_at)
    return {
        "node": node_id, "outage": outage, "partitions_it_led": led, "at_s": round(fault_at - started, 1),
        "seconds_to_leaders_moved": round(moved_at - fault_at, 1),
        "answered_503": sum(1 for a in traffic.answers if a.status == 503 and fault_at <= a.sent_at < back_at),
        "seconds_of_503s_after_fault": round(last_503 - fault_at, 1) if last_503 else 0.0,
        "seconds_down": round(back_at - fault_at, 1),
        "seconds_to_first_200_after_restart": round(first_200 - back_at, 2),
        "seconds_to_in_sync_after_restart": round(in_sync_at - back_at, 1),
        "back_at_s": round(back_at - started, 1),
    }


def record_figures(name: str, figures: dict[str, Any]) -> None:
    """Print the figures, and merge them into bench/results/broker_failover.json under `name` when asked
    (SHOPSYNC_UPDATE_DOCS=1: a test run leaves the checkout as it found it)."""
    print(f"\n{name}: " + orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode())
    if os.environ.get("SHOPSYNC_UPDATE_DOCS") != "1":
        return
    results = orjson.loads(RESULT_FILE.read_bytes()) if RESULT_FILE.exists() else {}
    results[name] = {**figures, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    results["machine"] = machine()
    RESULT_FILE.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


@pytest.mark.parametrize("outage", ["kill_9", "rolling_restart"])
async def test_every_acknowledged_webhook_survives_a_broker_failure(healthy_cluster: LocalCluster, tmp_path: Path,
                                                                    outage: str) -> None:
    cluster = healthy_cluster
    settings = cluster_settings(cluster)
    report = await ensure_topics(settings)
    assert report.problems == [] and len(report.created) == len(TOPICS), report
    topic = topic_name(TIKTOK_WEBHOOKS, settings.shopsync_topic_prefix)

    async def ready() -> bool:
        return fully_replicated(await cluster.partitions(topic)) and await min_insync(settings, topic) == "2"
    await eventually(ready, within=30, every=0.1, what=f"{topic} replicated 3 times with min.insync.replicas 2")

    gateway = Service(["gateway", "--port", str(GATEWAY_PORT)], settings_env(settings),
                      f"http://127.0.0.1:{GATEWAY_PORT}/readyz", tmp_path / "gateway.log")
    await gateway.start()
    traffic = Traffic(f"http://127.0.0.1:{GATEWAY_PORT}")
    started = time.monotonic()
    steps: list[dict[str, Any]] = []
    try:
        async with traffic.running():
            await traffic.until(lambda: traffic.count(200) >= STEADY_200S, 30, f"{STEADY_200S} webhooks answered 200")
            first = busiest_leader(await cluster.partitions(topic))
            others = [n.node_id for n in cluster.nodes if n.node_id != first]
            order = [first] if outage == "kill_9" else [first, *others]
            for node_id in order:
                steps.append(await fail_and_restart(cluster, traffic, topic, node_id,
                                                    "kill_9" if outage == "kill_9" else "sigterm", started))

            async def balanced() -> bool:
                return fully_replicated(await cluster.partitions(topic))
            await eventually(balanced, within=60, every=0.1, what="every partition led by its preferred replica again")
            balanced_at = time.monotonic()
            await traffic.until(lambda: traffic.steady(balanced_at), 60,
                                f"{STEADY_200S} consecutive 200s once every broker is back and leading")
    finally:
        gateway.stop()

    acknowledged = {a.notification_id for a in traffic.answers if a.status == 200}
    on_topic = {orjson.loads(r.value)["tts_notification_id"] async for r in read_to_end(settings, TIKTOK_WEBHOOKS)}
    missing = acknowledged - on_topic
    restarts = sum(1 for line in (tmp_path / "gateway.log").read_text().splitlines()
                   if "kafka_producer_restarted" in line)
    figures = {
        "requests": len(traffic.answers), "acknowledged": len(acknowledged), "missing": len(missing),
        "answered_503": traffic.count(503), "statuses": {str(k): v for k, v in sorted(traffic.statuses().items())},
        "unacknowledged_but_on_topic": len({a.notification_id for a in traffic.answers if a.status != 200} & on_topic),
        "gateway_producer_restarts": restarts, "seconds": round(time.monotonic() - started, 1),
        "replication_factor": 3, "min_insync_replicas": 2, "publish_timeout_s": settings.shopsync_publish_timeout_s,
        "seconds_to_preferred_leaders_after_last_restart": round(balanced_at - started - steps[-1]["back_at_s"], 1),
        "steps": steps,
    }
    record_figures(outage, figures)
    assert missing == set(), f"{len(missing)} webhooks answered 200 are not on {topic}: {sorted(missing)[:10]}"
    assert set(traffic.statuses()) <= {200, 503}, traffic.statuses()

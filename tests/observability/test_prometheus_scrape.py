"""A real Prometheus (Debian's `prometheus`) scrapes the whole pipeline (`shopsync run --demo`: gateway, stores
owner, ingest, mapping, store sync, with the sandbox pushing signed webhooks) and loads the alert rules: every metric
an alert or a dashboard panel names has series, every panel's PromQL evaluates, every rule evaluates."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from shared.kafka import create_producer
from shared.settings import Settings
from shared.topics import ORDERS_ENRICHED, ORDERS_INGESTED, topic_name
from shopsync.demo import demo_topic_prefix
from tests.demo_stack import demo_env
from tests.observability.promql import ALERTS, binary, panel_queries, referenced_metrics
from tests.servers import free_port
from tests.topicview import TopicView
from tests.waiting import eventually

SCRAPED = {"gateway": "gateway", "mapping": "mapping", "ingest": "ingest", "store-sync": "sync",
           "stores-owner": "owner"}  # job (the compose service name) → the port below


@contextlib.asynccontextmanager
async def running_stack(settings: Settings, tmp_path: Path, ports: dict[str, int]) -> AsyncIterator[list[str]]:
    """`shopsync run --demo` on the test's broker and ports; yields its output lines; Ctrl-C on exit."""
    env = demo_env(settings, tmp_path, {**ports, "console": free_port()})  # the console has no /metrics
    proc = await asyncio.to_thread(subprocess.Popen, [sys.executable, "-m", "shopsync", "run", "--demo"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # forking blocks: off the loop
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(line.decode() for line in proc.stdout or []), daemon=True)
    reader.start()
    try:
        yield lines
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.to_thread(proc.wait, 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)
        await asyncio.to_thread(reader.join, 10)


@contextlib.asynccontextmanager
async def running_prometheus(tmp_path: Path, ports: dict[str, int]) -> AsyncIterator[httpx.AsyncClient]:
    """Prometheus on a free port, scraping the stack every second with the project's alert rules; an API client."""
    port = free_port()
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "rule_files": [str(ALERTS)],
              "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{ports[name]}"]}]}
                                 for job, name in SCRAPED.items()]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (tmp_path / "prometheus.log").open("wb")
    proc = await asyncio.to_thread(subprocess.Popen, [
        binary("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as api:
            async def ready() -> bool:
                assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
                with contextlib.suppress(httpx.TransportError):
                    return (await api.get("/-/ready")).status_code == 200
                return False

            await eventually(ready, within=30, every=0.2, what="Prometheus ready")
            yield api
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
        log.close()


async def query(api: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
    """An instant query's result; fails the test with Prometheus' error when the PromQL does not evaluate."""
    answer = (await api.get("/api/v1/query", params={"query": expr})).json()
    assert answer["status"] == "success", f"{expr}: {answer.get('error')}"
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


async def make_a_dead_letter_and_a_bad_signature(settings: Settings, gateway_port: int) -> None:
    """An undecodable record on the demo's `orders.ingested` (the mapping dead-letters it), and a webhook with a
    wrong signature (the gateway answers 401)."""
    producer = create_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(topic_name(ORDERS_INGESTED, settings.shopsync_topic_prefix), b"not an order",
                                     key=b"x:y")
    finally:
        await producer.stop()
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"http://127.0.0.1:{gateway_port}/webhooks/tiktok", content=b'{"type": 1}',
                                 headers={"Authorization": "0" * 64})
    assert answer.status_code == 401


@pytest.mark.integration  # runs the stack and Prometheus
async def test_prometheus_finds_every_metric_the_alerts_and_the_dashboard_use(settings: Settings,
                                                                            tmp_path: Path) -> None:
    binary("prometheus")
    ports = {name: free_port() for name in ("gateway", "ingest", "mapping", "audit", "sandbox", "sync", "owner")}
    demo = settings.model_copy(update={"shopsync_topic_prefix": demo_topic_prefix(settings.shopsync_topic_prefix)})
    needed = referenced_metrics()
    async with running_stack(settings, tmp_path, ports) as lines:
        async with TopicView(demo, ORDERS_ENRICHED) as view:
            await view.until(lambda rs: len(rs) >= 3 or bool(lines and "Traceback" in "".join(lines)), within=120)
        await eventually(lambda: any(line.startswith("Running.") for line in lines), within=180, every=0.2,
                         what="the walkthrough (a shipment and a stock level synced)")
        await make_a_dead_letter_and_a_bad_signature(demo, ports["gateway"])
        async with running_prometheus(tmp_path, ports) as api:
            async def missing() -> set[str] | None:
                absent = {name for name in needed if not await query(api, f'count({{__name__="{name}"}})')}
                return absent or None

            async def all_found() -> bool:
                return await missing() is None

            with contextlib.suppress(AssertionError):
                await eventually(all_found, within=120, every=1, what="every referenced metric scraped")
            absent = await missing()
            assert absent is None, {name: sorted(needed[name]) for name in absent or ()}

            assert await query(api, 'dlq_records_total{job="mapping"} >= 1')
            assert await query(api, "gateway_signature_failures_total >= 1")
            assert await query(api, 'tiktok_api_requests_total{job="ingest", result="ok"} >= 1')
            down = await query(api, "up == 0")
            assert down == [], down
            assert {r["metric"]["job"] for r in await query(api, "up == 1")} == set(SCRAPED)
            for title, expr in panel_queries():
                await query(api, expr)  # evaluates (an empty result is fine: e.g. no errors right now)
                assert title
            rules = (await api.get("/api/v1/rules")).json()["data"]["groups"]
            health = {rule["name"]: (rule["health"], rule.get("lastError")) for g in rules for rule in g["rules"]}
            assert len(health) == 9 and all(h == "ok" for h, _ in health.values()), health
    assert "Stopped." in "".join(lines)

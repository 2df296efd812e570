"""The local broker manager: a second, private broker on other ports, so the session broker is untouched."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from shared.kafka import create_consumer, create_producer
from shared.settings import load_settings
from shopsync.cli import cli
from shopsync.localkafka import LocalKafka, LocalKafkaError, require_tool
from tests.waiting import eventually


@pytest.fixture
def private_broker(tmp_path: Path):
    broker = LocalKafka(home=tmp_path / "home", port=19192, controller_port=19193, heap="384m")
    yield broker
    broker.stop()


async def test_data_survives_a_broker_stop_and_start(private_broker: LocalKafka) -> None:
    assert await asyncio.to_thread(private_broker.start) is True
    assert await asyncio.to_thread(private_broker.start) is False  # idempotent
    settings = load_settings(kafka_bootstrap_servers=private_broker.bootstrap)
    from shopsync.topic_admin import ensure_topics

    await ensure_topics(settings)
    producer = create_producer(settings)
    await producer.start()
    await producer.send_and_wait("shopsync.dlq", b"kept", key=b"k")
    await producer.stop()

    assert await asyncio.to_thread(private_broker.stop) is True
    assert private_broker.status().running is False
    assert await asyncio.to_thread(private_broker.stop) is False  # idempotent
    assert (private_broker.data_dir / "meta.properties").exists()
    assert await asyncio.to_thread(private_broker.start) is True

    consumer = create_consumer(settings, None, "shopsync.dlq")
    await consumer.start()
    try:
        async def fetched() -> list[Any]:
            return [r for batch in (await consumer.getmany(timeout_ms=200)).values() for r in batch]

        got = await eventually(fetched, within=30, every=0, what="the record written before the restart")
    finally:
        await consumer.stop()
    assert [(r.key, r.value) for r in got] == [(b"k", b"kept")]


def test_missing_java_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(LocalKafkaError, match="apt-get install -y openjdk-17-jre-headless"):
        require_tool("java", "openjdk-17-jre-headless")


def test_install_without_maven_fails_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None if name == "mvn" else "/usr/bin/" + name)
    with pytest.raises(LocalKafkaError, match="apt-get install -y maven"):
        LocalKafka(home=tmp_path).install()


def test_cli_status_json_reports_the_session_broker(kafka_broker: str) -> None:
    result = CliRunner().invoke(cli, ["kafka", "status", "--json"])
    assert result.exit_code == 0, result.output
    assert '"running": true' in result.output


def test_external_cluster_means_nothing_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka.example:9092")
    result = CliRunner().invoke(cli, ["kafka", "start"])
    assert result.exit_code == 0
    assert "does nothing locally" in result.output

"""`shopsync run` starts the sandbox demo on an external cluster only with an explicit `--demo`, and the demo's
topics and consumer groups never are the production ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from shared import topics
from shared.settings import load_settings
from shopsync.cli import cli
from shopsync.commands.run import demo_mode, local_url
from shopsync.demo import demo_environment, demo_topic_prefix

PRODUCTION_TOPICS = [value for name, value in vars(topics).items() if name.isupper() and isinstance(value, str)
                     and "." in value]
GROUPS = ["shopsync-order-ingest", "shopsync-mapping", "shopsync-audit", "shopsync-store-sync-shipments"]


def test_run_refuses_the_implicit_demo_against_an_external_cluster(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run"], env={"KAFKA_BOOTSTRAP_SERVERS": "kafka.prod.example:9092",
                                                   "TIKTOK_APP_KEY": None, "SHOPSYNC_TOPIC_PREFIX": None,
                                                   "SHOPSYNC_HOME": str(tmp_path)})
    assert result.exit_code == 1, result.output
    assert "KAFKA_BOOTSTRAP_SERVERS is set (kafka.prod.example:9092)" in result.output
    assert "Pass --demo" in result.output and "'demo.'" in result.output
    assert not (tmp_path / "demo.env").exists()  # refused before anything was prepared or started


@pytest.mark.parametrize(("env", "flag", "expected"), [
    ({}, None, True),  # local broker, no TikTok app: the demo
    ({"tiktok_app_key": "real-app"}, None, False),  # TikTok configured: the pipeline
    ({"kafka_bootstrap_servers": "kafka:9092"}, True, True),  # --demo on a cluster: allowed, under its prefix
    ({"kafka_bootstrap_servers": "kafka:9092", "tiktok_app_key": "real-app"}, None, False),
    ({}, False, False),
])
def test_demo_mode(env: dict[str, str], flag: bool | None, expected: bool) -> None:
    base = {"kafka_bootstrap_servers": "", "tiktok_app_key": ""}
    assert demo_mode(load_settings(**{**base, **env}), flag) is expected


@pytest.mark.parametrize("prefix", ["", "prod.", "t1234."])
def test_the_demo_writes_under_its_own_prefix_and_groups(tmp_path: Path, prefix: str) -> None:
    demo_prefix = demo_environment(tmp_path, 8900, prefix)["SHOPSYNC_TOPIC_PREFIX"]
    assert demo_prefix == f"{prefix}demo." and demo_topic_prefix(demo_prefix) == demo_prefix  # sourcing demo.env
    for name in PRODUCTION_TOPICS + GROUPS:
        assert topics.topic_name(name, demo_prefix) != topics.topic_name(name, prefix)
        assert topics.topic_name(name, demo_prefix).startswith(prefix)  # still cleaned up with `prefix`
    assert f"export SHOPSYNC_TOPIC_PREFIX={demo_prefix}\n" in (tmp_path / "demo.env").read_text()


def test_health_urls_reach_wildcard_binds_on_loopback() -> None:
    assert local_url("0.0.0.0", 8002) == "http://127.0.0.1:8002"
    assert local_url("::1", 8002) == "http://[::1]:8002"
    assert local_url("10.1.2.3", 8002) == "http://10.1.2.3:8002"

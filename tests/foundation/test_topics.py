"""Topic names and `topics ensure` against the real broker."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.kafka import create_admin
from shared.settings import Settings
from shared.topic_admin import EnsureReport, _check_existing, ensure_topics
from shared.topics import MAPPINGS, ORDERS_ENRICHED, ORDERS_INGESTED, STORES, TIKTOK_WEBHOOKS, TOPICS, base_name, topic_name


def test_topic_name_applies_prefix_and_base_name_reverses_it() -> None:
    assert topic_name(TIKTOK_WEBHOOKS, "") == "tiktok.webhooks"
    assert topic_name(TIKTOK_WEBHOOKS, "test1.") == "test1.tiktok.webhooks"
    assert base_name("test1.tiktok.webhooks", "test1.") == "tiktok.webhooks"
    with pytest.raises(ValueError):
        base_name("other.tiktok.webhooks", "test1.")


def test_state_topics_are_compacted_and_logs_have_retention() -> None:
    specs = {s.name: s for s in TOPICS}
    for name in (STORES, MAPPINGS, ORDERS_INGESTED, ORDERS_ENRICHED):
        assert specs[name].config()["cleanup.policy"] == "compact"
    assert specs[TIKTOK_WEBHOOKS].config()["cleanup.policy"] == "delete"
    assert int(specs[TIKTOK_WEBHOOKS].config()["retention.ms"]) > 48 * 3600 * 1000


async def topic_configs(settings: Settings, name: str) -> dict[str, str]:
    admin = create_admin(settings)
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        return {e[0]: e[1] for r in responses for res in r.resources if not res[0] for e in res[4]}
    finally:
        await admin.close()


async def test_ensure_is_idempotent(settings: Settings) -> None:
    again = await ensure_topics(settings)  # the fixture ran it once already
    assert again.created == [] and again.problems == [] and again.reconfigured == []
    assert len(again.unchanged) == len(TOPICS)
    cfg = await topic_configs(settings, topic_name(MAPPINGS, settings.shopsync_topic_prefix))
    assert cfg["cleanup.policy"] == "compact"


async def test_ensure_fixes_drifted_config_and_reports_partition_shortfall(settings: Settings) -> None:
    name = topic_name(STORES, settings.shopsync_topic_prefix)
    admin = create_admin(settings)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs={"cleanup.policy": "delete"})])
    finally:
        await admin.close()
    async with asyncio.timeout(10):  # config changes reach the broker's metadata asynchronously
        while (await topic_configs(settings, name)).get("cleanup.policy") != "delete":
            await asyncio.sleep(0.05)
    wider = settings.model_copy(update={"shopsync_topic_partitions": 5})
    report = await ensure_topics(wider)
    assert any(line.startswith(f"{name}: cleanup.policy=compact") for line in report.reconfigured), report
    async with asyncio.timeout(10):
        while (await topic_configs(settings, name)).get("cleanup.policy") != "compact":
            await asyncio.sleep(0.05)
    assert len(report.problems) == len(TOPICS)
    assert all("has 3 partitions, configured 5" in p for p in report.problems), report.problems


async def test_a_config_the_broker_could_not_describe_is_reported_not_overwritten(settings: Settings) -> None:
    name = topic_name(STORES, settings.shopsync_topic_prefix)
    altered: list[object] = []

    class Admin:  # the broker answers the describe with an error for the topic's config
        async def describe_topics(self, names: list[str]) -> list[dict[str, object]]:
            return [{"topic": n, "partitions": [0, 1, 2]} for n in names]

        async def describe_configs(self, resources: list[ConfigResource]) -> list[SimpleNamespace]:
            return [SimpleNamespace(resources=[(2, "Corrupt message", 2, name, [])])]

        async def alter_configs(self, resources: list[ConfigResource]) -> None:
            altered.extend(resources)

    report = EnsureReport()
    spec = next(s for s in TOPICS if s.name == STORES)
    await _check_existing(Admin(), settings.model_copy(update={"shopsync_topic_partitions": 3}), [spec], report)
    assert altered == [] and report.reconfigured == [] and report.unchanged == []
    assert report.problems == [f"{name}: could not read its config (error 2: Corrupt message)"]

"""Topic names and `topics ensure` against the real broker."""

from __future__ import annotations

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.kafka import create_admin
from shared.settings import Settings, load_settings
from shared.topics import (
    MAPPINGS,
    ORDERS_ENRICHED,
    ORDERS_INGESTED,
    STORES,
    TIKTOK_WEBHOOKS,
    TOPICS,
    base_name,
    topic_name,
)
from shopsync.topic_admin import EnsureReport, _check_existing, ensure_topics, min_insync_replicas
from tests.fakes import FakeAdmin
from tests.waiting import eventually


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


async def config_is(settings: Settings, name: str, key: str, value: str) -> None:
    """Until the broker reports `key` = `value` in the topic's config."""
    async def reported() -> bool:
        return (await topic_configs(settings, name)).get(key) == value

    await eventually(reported, within=10, what=f"{name}: {key}={value}")


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
        drifted = ConfigResource(ConfigResourceType.TOPIC, name, configs={"cleanup.policy": "delete"})
        await admin.alter_configs([drifted])
    finally:
        await admin.close()
    await config_is(settings, name, "cleanup.policy", "delete")  # config changes reach the metadata later
    wider = settings.model_copy(update={"shopsync_topic_partitions": 5})
    report = await ensure_topics(wider)
    assert any(line.startswith(f"{name}: cleanup.policy=compact") for line in report.reconfigured), report
    await config_is(settings, name, "cleanup.policy", "compact")
    assert len(report.problems) == len(TOPICS)
    assert all("has 3 partitions, configured 5" in p for p in report.problems), report.problems


async def test_a_config_the_broker_could_not_describe_is_reported_not_overwritten() -> None:
    settings = load_settings(shopsync_topic_prefix="p.", shopsync_topic_partitions=3, shopsync_topic_replication=1)
    name = topic_name(STORES, settings.shopsync_topic_prefix)
    admin = FakeAdmin({name: (1, {})}, unreadable={name: (2, "Corrupt message")})  # the describe answers an error
    report = EnsureReport()
    spec = next(s for s in TOPICS if s.name == STORES)
    await _check_existing(admin, settings, [spec], report)  # type: ignore[arg-type]  # the fake
    assert admin.altered == [] and report.reconfigured == [] and report.unchanged == []
    assert report.problems == [f"{name}: could not read its config (error 2: Corrupt message)"]


@pytest.mark.parametrize(("replication", "configured", "expected"), [
    (1, None, 1), (2, None, 1), (3, None, 2), (5, None, 4),
    (3, 1, 1), (3, 3, 3), (1, 1, 1),
])
def test_min_insync_replicas_is_replication_minus_one_unless_configured(replication: int, configured: int | None,
                                                                        expected: int) -> None:
    assert min_insync_replicas(replication, configured) == expected


@pytest.mark.parametrize(("replication", "configured"), [(1, 2), (3, 4), (3, 0)])
def test_a_min_insync_replicas_no_write_could_meet_is_refused(replication: int, configured: int) -> None:
    with pytest.raises(ValueError, match=f"must be 1 to {replication} \\(the replication factor\\)"):
        min_insync_replicas(replication, configured)


async def fake_ensure(monkeypatch: pytest.MonkeyPatch, admin: FakeAdmin, **settings: object) -> EnsureReport:
    monkeypatch.setattr("shopsync.topic_admin.create_admin", lambda _settings: admin)
    spec = next(s for s in TOPICS if s.name == TIKTOK_WEBHOOKS)
    return await ensure_topics(Settings(shopsync_topic_prefix="p.", **settings), (spec,))  # type: ignore[arg-type]


async def test_topics_created_with_replication_3_require_two_in_sync_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = FakeAdmin({})
    report = await fake_ensure(monkeypatch, admin, shopsync_topic_replication=3)
    assert report.created == ["p.tiktok.webhooks"] and report.problems == []
    [topic] = admin.created
    assert topic.replication_factor == 3 and topic.topic_configs["min.insync.replicas"] == "2"  # type: ignore[attr-defined]


async def test_a_min_insync_replicas_above_the_replication_factor_creates_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    admin = FakeAdmin({})
    report = await fake_ensure(monkeypatch, admin, shopsync_topic_replication=3, shopsync_topic_min_insync_replicas=4)
    assert admin.created == [] and report.created == []
    assert report.problems == [("p.tiktok.webhooks: not created: min.insync.replicas 4 must be 1 to 3 (the "
                                "replication factor); more would refuse every acks=all write")]


async def test_drift_in_min_insync_replicas_is_reported_and_fixed_from_the_topics_own_replication(
        monkeypatch: pytest.MonkeyPatch) -> None:
    spec = next(s for s in TOPICS if s.name == TIKTOK_WEBHOOKS)
    admin = FakeAdmin({"p.tiktok.webhooks": (3, {**spec.config(), "min.insync.replicas": "1"})})
    report = await fake_ensure(monkeypatch, admin, shopsync_topic_replication=3)
    assert report.reconfigured == ["p.tiktok.webhooks: min.insync.replicas=2 (was 1)"] and report.problems == []
    [altered] = admin.altered
    assert altered.configs == {**spec.config(), "min.insync.replicas": "2"}


async def test_a_topic_with_fewer_replicas_than_configured_is_reported_and_keeps_its_min_insync(
        monkeypatch: pytest.MonkeyPatch) -> None:
    spec = next(s for s in TOPICS if s.name == TIKTOK_WEBHOOKS)
    admin = FakeAdmin({"p.tiktok.webhooks": (1, {**spec.config(), "cleanup.policy": "compact",
                                                 "min.insync.replicas": "1"})})
    report = await fake_ensure(monkeypatch, admin, shopsync_topic_replication=3, shopsync_topic_min_insync_replicas=2)
    assert report.problems == [
        ("p.tiktok.webhooks: has replication factor 1, configured 3 (not changed: add replicas with a partition "
         "reassignment)"),
        ("p.tiktok.webhooks: min.insync.replicas not changed: min.insync.replicas 2 must be 1 to 1 (the "
         "replication factor); more would refuse every acks=all write"),
    ]
    [altered] = admin.altered  # the other drift is still fixed, without touching min.insync.replicas
    assert altered.configs == {**spec.config(), "min.insync.replicas": "1"}


async def test_ensure_gives_replication_1_topics_min_insync_1_and_fixes_drift_in_it(settings: Settings) -> None:
    name = topic_name(TIKTOK_WEBHOOKS, settings.shopsync_topic_prefix)
    await config_is(settings, name, "min.insync.replicas", "1")  # a new topic's config may not be readable at once
    admin = create_admin(settings)
    await admin.start()
    try:
        spec = next(s for s in TOPICS if s.name == TIKTOK_WEBHOOKS)
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name,
                                                  configs={**spec.config(), "min.insync.replicas": "2"})])
    finally:
        await admin.close()
    await config_is(settings, name, "min.insync.replicas", "2")
    report = await ensure_topics(settings)
    assert report.reconfigured == [f"{name}: min.insync.replicas=1 (was 2)"] and report.problems == []
    await config_is(settings, name, "min.insync.replicas", "1")


async def test_a_configured_min_insync_above_the_replication_is_a_problem_on_every_topic(settings: Settings) -> None:
    report = await ensure_topics(settings.model_copy(update={"shopsync_topic_min_insync_replicas": 2}))
    assert report.reconfigured == [] and report.unchanged == []
    assert len(report.problems) == len(TOPICS)
    assert all("min.insync.replicas not changed: min.insync.replicas 2 must be 1 to 1" in p
               for p in report.problems), report.problems

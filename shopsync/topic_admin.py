"""`topics ensure`: create every product topic with its settings, idempotently, and report drift.

Every topic gets `min.insync.replicas` from its replication factor (`min_insync_replicas`), so acks=all means
"on two brokers" on a three-broker cluster, not "on the leader".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from shared.kafka import create_admin
from shared.settings import Settings
from shared.topics import TOPICS, TopicSpec, topic_name

MIN_INSYNC = "min.insync.replicas"
SETTLE_S = 5.0


@dataclass(slots=True)
class EnsureReport:
    """What `ensure_topics` did: created, reconfigured, unchanged, and differences it cannot fix."""

    created: list[str] = field(default_factory=list)
    reconfigured: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def min_insync_replicas(replication_factor: int, configured: int | None = None) -> int:
    """The `min.insync.replicas` a topic with `replication_factor` replicas gets: `configured`, else RF − 1 (≥ 1).

    With acks=all the leader acknowledges once this many replicas have the record, so RF − 1 keeps every
    acknowledged record on two brokers (RF 3) while one broker is away. Raises ValueError when `configured`
    exceeds the replication factor: every acks=all write would then be refused.
    """
    if configured is None:
        return max(1, replication_factor - 1)
    if not 1 <= configured <= replication_factor:
        raise ValueError(f"min.insync.replicas {configured} must be 1 to {replication_factor} (the replication "
                         "factor); more would refuse every acks=all write")
    return configured


def wanted_config(spec: TopicSpec, replication_factor: int, settings: Settings) -> dict[str, str]:
    """Every topic-level config `topics ensure` gives `spec` on a topic with `replication_factor` replicas."""
    minimum = min_insync_replicas(replication_factor, settings.shopsync_topic_min_insync_replicas)
    return {**spec.config(), MIN_INSYNC: str(minimum)}


async def ensure_topics(settings: Settings, specs: tuple[TopicSpec, ...] = TOPICS) -> EnsureReport:
    """Create missing topics, fix configs that drifted, and report partition and replication shortfalls."""
    report = EnsureReport()
    prefix = settings.shopsync_topic_prefix
    admin = create_admin(settings)
    await admin.start()
    try:
        described = await admin.describe_topics([topic_name(s.name, prefix) for s in specs])
        existing = {t["topic"] for t in described if t["error_code"] == 0}
        present = [s for s in specs if topic_name(s.name, prefix) in existing]
        missing = [s for s in specs if topic_name(s.name, prefix) not in existing]
        if missing:
            present += await _create_missing(admin, settings, missing, report)
        if present:
            await _check_existing(admin, settings, present, report)
    finally:
        await admin.close()
    return report


async def _create_missing(admin: AIOKafkaAdminClient, settings: Settings, specs: list[TopicSpec],
                          report: EnsureReport) -> list[TopicSpec]:
    """Create `specs`; returns those that exist after all (created meanwhile, or not yet in the broker's metadata).

    When the configured min ISR cannot be met the request only validates (the broker still says which topics
    already exist) and every topic that does not is reported, not created.
    """
    prefix = settings.shopsync_topic_prefix
    replication = settings.shopsync_topic_replication
    refusal: ValueError | None = None
    try:
        configs = [wanted_config(s, replication, settings) for s in specs]
    except ValueError as exc:
        refusal, configs = exc, [s.config() for s in specs]
    response = await admin.create_topics([
        NewTopic(topic_name(s.name, prefix), settings.shopsync_topic_partitions, replication, topic_configs=config)
        for s, config in zip(specs, configs, strict=True)
    ], validate_only=refusal is not None)
    failed = {name: (code, message) for name, code, message in _topic_errors(response)}
    existing = []
    for spec in specs:
        name = topic_name(spec.name, prefix)
        code, message = failed.get(name, (0, ""))
        if code == TopicAlreadyExistsError.errno:
            existing.append(spec)
        elif code:
            report.problems.append(f"{name}: could not create (error {code}: {message})")
        elif refusal is not None:
            report.problems.append(f"{name}: not created: {refusal}")
        else:
            report.created.append(name)
    return existing


async def _check_existing(admin: AIOKafkaAdminClient, settings: Settings, specs: list[TopicSpec],
                          report: EnsureReport) -> None:
    prefix = settings.shopsync_topic_prefix
    names = [topic_name(s.name, prefix) for s in specs]
    described = await _describe_settled(admin, names)
    partition_counts = {t["topic"]: len(t["partitions"]) for t in described}
    replication = {t["topic"]: min((len(p["replicas"]) for p in t["partitions"]), default=0) for t in described}
    current, unreadable = await _read_configs(admin, names)
    for spec, name in zip(specs, names, strict=True):
        if name not in partition_counts:
            report.problems.append(f"{name}: exists, but the broker does not describe it yet (run again)")
            continue
        if name in unreadable:
            report.problems.append(unreadable[name])
            continue
        have = partition_counts.get(name, 0)
        if have < settings.shopsync_topic_partitions:
            report.problems.append(
                f"{name}: has {have} partitions, configured {settings.shopsync_topic_partitions} "
                "(not changed: adding partitions moves keys; do it deliberately)"
            )
        replicas = replication.get(name, 0)
        if replicas < settings.shopsync_topic_replication:
            report.problems.append(
                f"{name}: has replication factor {replicas}, configured {settings.shopsync_topic_replication} "
                "(not changed: add replicas with a partition reassignment)"
            )
        have_config = current.get(name, {})
        try:
            wanted = wanted_config(spec, replicas, settings)
        except ValueError as exc:
            report.problems.append(f"{name}: {MIN_INSYNC} not changed: {exc}")
            wanted = spec.config()
            if MIN_INSYNC in have_config:  # the alter below replaces every topic config: keep this one as it is
                wanted[MIN_INSYNC] = have_config[MIN_INSYNC]
        drift = {k: v for k, v in wanted.items() if have_config.get(k) != v}
        if drift:
            await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs=wanted)])
            report.reconfigured.append(f"{name}: " + ", ".join(
                f"{k}={v} (was {have_config.get(k, 'unset')})" for k, v in drift.items()))
        elif not any(p.startswith(f"{name}:") for p in report.problems):
            report.unchanged.append(name)


async def _describe_settled(admin: AIOKafkaAdminClient, names: list[str]) -> list[dict[str, Any]]:
    """`describe_topics` for topics that exist, asking again for up to SETTLE_S while a just-created one is not
    in the broker's metadata yet; returns those it could describe."""
    deadline = asyncio.get_running_loop().time() + SETTLE_S
    while True:
        described = await admin.describe_topics(names)
        known = [t for t in described if t.get("error_code", 0) == 0 and t["partitions"]]
        if len(known) == len(names) or asyncio.get_running_loop().time() >= deadline:
            return known
        await asyncio.sleep(0.1)


async def _read_configs(admin: AIOKafkaAdminClient,
                        names: list[str]) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Each topic's config, or why it could not be read; asks again for a topic the broker does not know yet
    (just created: its metadata is still reaching the broker), for up to SETTLE_S."""
    current: dict[str, dict[str, str]] = {}
    unreadable: dict[str, str] = {}
    pending = list(names)
    deadline = asyncio.get_running_loop().time() + SETTLE_S
    while pending:
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in pending])
        settling = []
        for response in configs:
            for resource in response.resources:
                code, message, _, resource_name, entries = resource[:5]
                if code:  # never mistake "no answer" for drift
                    unreadable[resource_name] = f"{resource_name}: could not read its config (error {code}: {message})"
                    if code == UnknownTopicOrPartitionError.errno:
                        settling.append(resource_name)
                else:
                    unreadable.pop(resource_name, None)
                    current[resource_name] = {entry[0]: entry[1] for entry in entries}
        if not settling or asyncio.get_running_loop().time() >= deadline:
            break
        pending = settling
        await asyncio.sleep(0.1)
    return current, unreadable


def _topic_errors(response: object) -> list[tuple[str, int, str]]:
    errors: list[tuple[str, int, str]] = []
    for item in getattr(response, "topic_errors", []) or []:
        name, code = item[0], item[1]
        message = item[2] if len(item) > 2 else ""
        if code:
            errors.append((name, code, message or ""))
    return errors


async def delete_prefixed_topics(settings: Settings) -> list[str]:
    """Delete every topic under the settings' (non-empty) prefix: test and benchmark clean-up."""
    if not settings.shopsync_topic_prefix:
        raise ValueError("refusing to delete topics without a prefix")
    admin = create_admin(settings)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(settings.shopsync_topic_prefix)]
        if names:
            await admin.delete_topics(names)
        return names
    finally:
        await admin.close()

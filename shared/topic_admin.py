"""`topics ensure`: create every product topic with its settings, idempotently, and report drift."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from shared.kafka import create_admin
from shared.settings import Settings
from shared.topics import TOPICS, TopicSpec, topic_name


@dataclass(slots=True)
class EnsureReport:
    """What `ensure_topics` did: created, reconfigured, unchanged, and differences it cannot fix."""

    created: list[str] = field(default_factory=list)
    reconfigured: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


async def ensure_topics(settings: Settings, specs: tuple[TopicSpec, ...] = TOPICS) -> EnsureReport:
    """Create missing topics, fix configs that drifted, and report partition shortfalls."""
    report = EnsureReport()
    prefix = settings.shopsync_topic_prefix
    partitions = settings.shopsync_topic_partitions
    admin = create_admin(settings)
    await admin.start()
    try:
        described = await admin.describe_topics([topic_name(s.name, prefix) for s in specs])
        existing = {t["topic"] for t in described if t["error_code"] == 0}
        missing = [s for s in specs if topic_name(s.name, prefix) not in existing]
        if missing:
            new = [
                NewTopic(topic_name(s.name, prefix), partitions, settings.shopsync_topic_replication, topic_configs=s.config())
                for s in missing
            ]
            response = await admin.create_topics(new)
            failed = {name: (code, message) for name, code, message in _topic_errors(response)}
            for spec in list(missing):
                name = topic_name(spec.name, prefix)
                code, message = failed.get(name, (0, ""))
                if code == TopicAlreadyExistsError.errno:
                    missing.remove(spec)  # created concurrently: check it like any existing topic
                elif code:
                    report.problems.append(f"{name}: could not create (error {code}: {message})")
                else:
                    report.created.append(name)
        present = [s for s in specs if s not in missing]
        if present:
            await _check_existing(admin, settings, present, report)
    finally:
        await admin.close()
    return report


async def _check_existing(admin, settings: Settings, specs: list[TopicSpec], report: EnsureReport) -> None:
    prefix = settings.shopsync_topic_prefix
    names = [topic_name(s.name, prefix) for s in specs]
    described = await admin.describe_topics(names)
    partition_counts = {t["topic"]: len(t["partitions"]) for t in described}
    configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    current: dict[str, dict[str, str]] = {}
    unreadable: dict[str, str] = {}
    for response in configs:
        for resource in response.resources:
            code, message, _, resource_name, entries = resource[:5]
            if code:  # e.g. the topic's metadata is still settling: never mistake "no answer" for drift
                unreadable[resource_name] = f"{resource_name}: could not read its config (error {code}: {message})"
            else:
                current[resource_name] = {entry[0]: entry[1] for entry in entries}
    for spec, name in zip(specs, names):
        if name in unreadable:
            report.problems.append(unreadable[name])
            continue
        have = partition_counts.get(name, 0)
        if have < settings.shopsync_topic_partitions:
            report.problems.append(
                f"{name}: has {have} partitions, configured {settings.shopsync_topic_partitions} "
                "(not changed: adding partitions moves keys; do it deliberately)"
            )
        wanted = spec.config()
        drift = {k: v for k, v in wanted.items() if current.get(name, {}).get(k) != v}
        if drift:
            await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs=wanted)])
            report.reconfigured.append(f"{name}: " + ", ".join(f"{k}={v}" for k, v in drift.items()))
        elif not any(p.startswith(f"{name}:") for p in report.problems):
            report.unchanged.append(name)


def _topic_errors(response) -> list[tuple[str, int, str]]:
    errors = []
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

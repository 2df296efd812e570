"""`shopsync topics ensure|list`: every topic the product uses, with its settings."""

from __future__ import annotations

import asyncio
from typing import TypedDict

import click

from shared.topics import TOPICS, topic_name
from shopsync.console import fail, json_option, print_json, settings_from
from shopsync.topic_admin import ensure_topics


class TopicRow(TypedDict):
    """One line of `topics list`."""

    topic: str
    config: dict[str, str]
    description: str


@click.group()
def topics() -> None:
    """Create and inspect the product's Kafka topics."""


@topics.command()
@json_option
@click.pass_context
def ensure(ctx: click.Context, as_json: bool) -> None:
    """Create missing topics and fix drifted configs; report what cannot be fixed (exit 1)."""
    settings = settings_from(ctx)
    try:
        report = asyncio.run(ensure_topics(settings))
    except Exception as exc:
        fail(f"could not reach Kafka at {settings.bootstrap_servers}: {exc.__class__.__name__}: {exc}")
    if as_json:
        print_json({"created": report.created, "reconfigured": report.reconfigured,
                    "unchanged": report.unchanged, "problems": report.problems})
    else:
        for name in report.created:
            click.echo(f"created       {name}")
        for line in report.reconfigured:
            click.echo(f"reconfigured  {line}")
        for name in report.unchanged:
            click.echo(f"ok            {name}")
        for line in report.problems:
            click.echo(f"PROBLEM       {line}", err=True)
    if report.problems:
        raise SystemExit(1)


@topics.command("list")
@json_option
@click.pass_context
def list_topics(ctx: click.Context, as_json: bool) -> None:
    """List the product's topics and their settings."""
    settings = settings_from(ctx)
    rows = [TopicRow(topic=topic_name(s.name, settings.shopsync_topic_prefix), config=s.config(),
                     description=s.description) for s in TOPICS]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        click.echo(f"{row['topic']:<28} {row['config']['cleanup.policy']:<8} {row['description']}")


@topics.command()
def asyncapi() -> None:
    """Print the AsyncAPI 3.0 document of the topic contract (docs/asyncapi.yaml)."""
    from shopsync.contract import asyncapi_yaml

    click.echo(asyncapi_yaml(), nl=False)

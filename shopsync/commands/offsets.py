"""`shopsync offsets reset`: move a stopped consumer group for full reprocessing."""

from __future__ import annotations

import asyncio
import time

import click

from shared.topics import TOPIC_SPECS, topic_name
from shopsync.console import fail, json_option, print_json, settings_from
from shopsync.operator.offsets import GroupActive, apply_reset, plan_reset
from shopsync.operator.timeparse import parse_time


@click.group()
def offsets() -> None:
    """Consumer-group offsets."""


@offsets.command()
@click.option("--group", required=True, help="Consumer group, e.g. shopsync-mapping.")
@click.option("--to-datetime", default=None, help="ISO time or duration back (6h).")
@click.option("--to-earliest", is_flag=True)
@click.option("--to-latest", is_flag=True)
@click.option("--topic", "topics", multiple=True, help="Product topic (default: the group's topics).")
@click.option("--dry-run", is_flag=True, help="Show old and new offsets per partition; change nothing.")
@json_option
@click.pass_context
def reset(ctx: click.Context, group: str, to_datetime: str | None, to_earliest: bool, to_latest: bool,
          topics: tuple[str, ...], dry_run: bool, as_json: bool) -> None:
    """Reset GROUP's offsets (refused while the group has active members)."""
    settings = settings_from(ctx)
    chosen = [n for n, v in (("--to-datetime", to_datetime), ("--to-earliest", to_earliest),
                             ("--to-latest", to_latest)) if v]
    if len(chosen) != 1:
        fail("give exactly one of --to-datetime, --to-earliest, --to-latest")
    for t in topics:
        if t not in TOPIC_SPECS:
            fail(f"unknown topic {t!r}; one of: {', '.join(sorted(TOPIC_SPECS))}")
    at_ms = None
    if to_datetime:
        try:
            at_ms = parse_time(to_datetime, time.time(), "--to-datetime") * 1000
        except ValueError as exc:
            fail(str(exc))
    target = "datetime" if to_datetime else "earliest" if to_earliest else "latest"
    real = [topic_name(t, settings.shopsync_topic_prefix) for t in topics] or None
    try:
        moves = asyncio.run(plan_reset(settings, group, target, at_ms, real))
        if not dry_run:
            asyncio.run(apply_reset(settings, group, moves))
    except (GroupActive, ValueError) as exc:
        fail(str(exc))
    rows = [{"topic": m.topic, "partition": m.partition, "old": m.old, "new": m.new} for m in moves]
    if as_json:
        print_json({"group": group, "dry_run": dry_run, "partitions": rows})
        return
    for row in rows:
        click.echo(f"{row['topic']}[{row['partition']}]  {row['old']} → {row['new']}")
    click.echo("dry run: nothing changed" if dry_run else f"reset {len(rows)} partitions of {group}")

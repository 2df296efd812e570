"""`shopsync dlq list|redrive`: records that could not be processed."""

from __future__ import annotations

import asyncio
import time

import click

from shopsync.console import fail, json_option, print_json, settings_from
from shopsync.operator.dlq import list_dead_letters
from shopsync.operator.dlq import redrive as redrive_letters
from shopsync.operator.timeparse import parse_time


@click.group()
def dlq() -> None:
    """Dead letters: why records were set aside, and sending them through again."""


def _since(since: str | None) -> str | None:
    if since is None:
        return None
    try:
        from shared.envelope import rfc3339

        return rfc3339(parse_time(since, time.time()))
    except ValueError as exc:
        fail(str(exc))


@dlq.command("list")
@click.option("--since", default=None, help="Only those set aside since (6h, ISO time).")
@click.option("--all", "include_redriven", is_flag=True, help="Include ones already redriven.")
@json_option
@click.pass_context
def list_cmd(ctx: click.Context, since: str | None, include_redriven: bool, as_json: bool) -> None:
    """Reason, source topic, key and time of each dead letter."""
    cutoff = _since(since)
    items = [i for i in asyncio.run(list_dead_letters(settings_from(ctx)))
             if (include_redriven or not i.redriven) and (cutoff is None or i.letter.at >= cutoff)]
    rows = [{"at": i.letter.at, "reason": i.letter.reason, "source_topic": i.letter.source_topic,
             "key": (i.letter.key or b"").decode(errors="replace"), "partition": i.partition, "offset": i.offset,
             "redriven": i.redriven} for i in items]
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("No dead letters.")
    for row in rows:
        click.echo(f"{row['at']}  {row['source_topic']:<22} {row['key']:<40} {row['reason']}")


@dlq.command("redrive")
@click.option("--reason", default=None, help="Only dead letters whose reason starts with this.")
@json_option
@click.pass_context
def redrive(ctx: click.Context, reason: str | None, as_json: bool) -> None:
    """Republish dead letters to their source topic (original key and headers) and mark them redriven."""
    settings = settings_from(ctx)
    items = [i for i in asyncio.run(list_dead_letters(settings))
             if not i.redriven and (reason is None or i.letter.reason.startswith(reason))]
    count = asyncio.run(redrive_letters(settings, items))
    print_json({"redriven": count}) if as_json else click.echo(f"redriven {count} dead letters")

"""`shopsync replay`: re-enrich orders with today's mappings after mapping fixes.

The options choose orders, never versions: each chosen order is re-driven from its current (newest) record.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from shared.stores.table import StoreTable
from shopsync.console import fail, json_option, print_json, settings_from
from shopsync.operator.replay import Selection, Summary
from shopsync.operator.replay import replay as run_replay
from shopsync.operator.timeparse import parse_time


@click.command()
@click.option("--shop", default=None, help="Shop id or store nickname.")
@click.option("--from", "from_", default=None,
              help="Orders that changed since (ISO time or 6h); replayed from their current version.")
@click.option("--to", default=None,
              help="…and before (ISO time or 1h); a later change (a cancellation) is kept, never undone.")
@click.option("--order-id", "order_ids", multiple=True, help="An order id (repeatable).")
@click.option("--order-ids", "order_ids_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A file with one order id per line.")
@click.option("--only-incomplete", is_flag=True, help="Only orders whose last enrichment had unmapped lines.")
@click.option("--force", is_flag=True, help="Re-send orders whose enriched content would not change.")
@click.option("--dry-run", is_flag=True,
              help="Count what would be replayed and changed (--json lists the keys); send nothing.")
@click.option("--rate", type=click.FloatRange(min=0.1), default=None, help="At most N orders/s.")
@json_option
@click.pass_context
def replay(ctx: click.Context, shop: str | None, from_: str | None, to: str | None, order_ids: tuple[str, ...],
           order_ids_file: Path | None, only_incomplete: bool, force: bool, dry_run: bool, rate: float | None,
           as_json: bool) -> None:
    """Re-drive orders through enrichment (cause: replay); unchanged orders are not re-sent unless --force.

    Each selected order is republished from its newest orders.ingested record, so what it is now (withdrawn,
    updated) is what gets re-enriched; orders withdrawn by now are left alone.
    """
    settings = settings_from(ctx)
    now = time.time()
    try:
        from_ms = parse_time(from_, now, "--from") * 1000 if from_ else None
        to_ms = parse_time(to, now, "--to") * 1000 if to else None
    except ValueError as exc:
        fail(str(exc))
    if from_ms is not None and to_ms is not None and from_ms >= to_ms:
        fail("--from must be before --to")
    shop_id = None
    if shop:
        store = asyncio.run(StoreTable().load(settings)).find(shop)
        if store is None:
            fail(f"unknown shop {shop!r}")
        shop_id = store.shop_id
    ids = set(order_ids) | ({line.strip() for line in order_ids_file.read_text().splitlines() if line.strip()}
                            if order_ids_file else set())
    selection = Selection(shop_id, from_ms, to_ms, frozenset(ids) if ids else None, only_incomplete)
    with Progress(TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                  disable=as_json, transient=True) as progress:
        task = progress.add_task("replay", total=None)

        def advance(summary: Summary) -> None:
            progress.update(task, completed=summary.replayed,
                            total=summary.changed + (summary.unchanged if force else 0))

        summary = asyncio.run(run_replay(settings, selection, force=force, dry_run=dry_run, rate=rate,
                                         on_progress=advance))
    if as_json:
        print_json(summary.to_dict())
        return
    verb = "would replay" if dry_run else "replayed"
    click.echo(f"read {summary.read}, selected {summary.selected}, {verb} {summary.replayed}, "
               f"changed {summary.changed}, unchanged {summary.unchanged}, failed {summary.failed}, "
               f"elapsed {summary.elapsed_s:.2f}s (replay id {summary.replay_id})"
               + (f", restored {summary.restored} newer records written meanwhile" if summary.restored else ""))
    if summary.failed:
        raise SystemExit(1)

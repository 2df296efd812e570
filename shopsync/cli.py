"""`shopsync`: one CLI with a sub-command per service and per operator task. The one place that wires it all."""

from __future__ import annotations

import click

from shared.logging import configure_logging
from shared.settings import load_settings
from shopsync.commands.audit import audit
from shopsync.commands.console import console
from shopsync.commands.dlq import dlq
from shopsync.commands.explain import explain
from shopsync.commands.gateway import gateway
from shopsync.commands.ingest import ingest
from shopsync.commands.kafka import kafka
from shopsync.commands.mapping import mapping
from shopsync.commands.mappings import mappings
from shopsync.commands.offsets import offsets
from shopsync.commands.replay import replay
from shopsync.commands.run import run
from shopsync.commands.sandbox import sandbox
from shopsync.commands.store_sync import inventory, ship, store_sync
from shopsync.commands.stores import keygen, stores
from shopsync.commands.stores_owner import stores_owner
from shopsync.commands.sync import sync
from shopsync.commands.tail import tail
from shopsync.commands.topics import topics


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """shopsync: TikTok Shop orders into your warehouse / OMS, over Apache Kafka."""
    settings = load_settings()
    ctx.obj = settings
    fmt = settings.shopsync_log_format
    configure_logging(settings.shopsync_log_level, "console" if fmt == "auto" else fmt)


cli.add_command(audit)
cli.add_command(console)
cli.add_command(dlq)
cli.add_command(explain)
cli.add_command(gateway)
cli.add_command(ingest)
cli.add_command(keygen)
cli.add_command(stores)
cli.add_command(stores_owner)
cli.add_command(sync)
cli.add_command(tail)
cli.add_command(kafka)
cli.add_command(mapping)
cli.add_command(mappings)
cli.add_command(topics)
cli.add_command(offsets)
cli.add_command(replay)
cli.add_command(run)
cli.add_command(sandbox)
cli.add_command(store_sync)
cli.add_command(ship)
cli.add_command(inventory)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="shopsync")

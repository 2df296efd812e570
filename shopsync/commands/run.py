"""`shopsync run`: broker, topics and every service, in the foreground until Ctrl-C (what `make run` calls)."""

from __future__ import annotations

import asyncio
import signal
import time

import click

from shared.topic_admin import ensure_topics
from shopsync.console import fail, settings_from
from shopsync.localkafka import LocalKafka, LocalKafkaError
from shopsync.supervisor import Child, Supervisor


def pipeline_children(settings) -> list[Child]:  # type: ignore[no-untyped-def]
    """The services `shopsync run` starts, in start order."""
    from shopsync.cli import cli

    wanted = [
        Child("gateway", ["gateway"], f"http://{settings.shopsync_gateway_host}:{settings.shopsync_gateway_port}"),
    ]
    return [c for c in wanted if c.args[0] in cli.commands]


@click.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Start Kafka (unless KAFKA_BOOTSTRAP_SERVERS is set), create topics, start every service; Ctrl-C stops all."""
    settings = settings_from(ctx)
    broker = LocalKafka.from_settings(settings) if settings.uses_local_kafka else None
    started_broker = False
    if broker is not None:
        click.echo("Starting the local Kafka broker (first run downloads its jars with Maven)...")
        try:
            started_broker = broker.start()
        except LocalKafkaError as exc:
            fail(str(exc))
    click.echo(f"Kafka: {settings.bootstrap_servers}")
    report = asyncio.run(ensure_topics(settings))
    click.echo(f"Topics: {len(report.created)} created, {len(report.unchanged) + len(report.reconfigured)} present")
    for problem in report.problems:
        click.echo(f"  topic problem: {problem}", err=True)

    supervisor = Supervisor(settings.shopsync_home / "logs")
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        for child in pipeline_children(settings):
            supervisor.start(child)
            click.echo(f"  {child.name:<12} {child.url or ''}  (log: {supervisor.logs_dir / (child.name + '.log')})")
        click.echo("Running. Press Ctrl-C to stop.")
        while not stopping:
            for child in supervisor.dead():
                click.echo(f"{child.name} exited with code {child.proc.returncode if child.proc else '?'}; "
                           f"see {supervisor.logs_dir / (child.name + '.log')}", err=True)
                stopping = True
            time.sleep(0.3)
    finally:
        click.echo("Stopping services...")
        supervisor.stop_all()
        if broker is not None and started_broker:
            click.echo("Stopping Kafka...")
            broker.stop()
        click.echo("Stopped.")

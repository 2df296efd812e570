"""`shopsync kafka install|start|stop|status|logs`: the project's local Apache Kafka broker."""

from __future__ import annotations

import click

from shopsync.console import fail, json_option, print_json, settings_from
from shopsync.localkafka import KAFKA_VERSION, LocalKafka, LocalKafkaError, SecuredLocalKafka

secured_option = click.option(
    "--secured", is_flag=True,
    help="The second, secured local broker: SASL_SSL + SCRAM-SHA-512 on 127.0.0.1:9094, mutual TLS on :9096; "
         "its client settings are in .shopsync/kafka-secured/client.env.")


def _local(ctx: click.Context, command: str, secured: bool = False) -> LocalKafka | None:
    settings = settings_from(ctx)
    if secured:  # a local test double of a managed cluster: KAFKA_BOOTSTRAP_SERVERS may well point at it
        return SecuredLocalKafka.from_settings(settings)
    if not settings.uses_local_kafka:
        click.echo(f"KAFKA_BOOTSTRAP_SERVERS={settings.kafka_bootstrap_servers}: using that cluster; "
                   f"`kafka {command}` does nothing locally.")
        return None
    return LocalKafka.from_settings(settings)


@click.group()
def kafka() -> None:
    """Manage the local single-node Kafka broker (KRaft mode, Apache Kafka jars from Maven Central)."""


@kafka.command()
@click.pass_context
def install(ctx: click.Context) -> None:
    """Resolve the broker's jars with Maven (once; offline afterwards)."""
    broker = _local(ctx, "install")
    if broker is None:
        return
    try:
        fresh = broker.install()
    except LocalKafkaError as exc:
        fail(str(exc))
    click.echo(f"Kafka {KAFKA_VERSION} {'installed' if fresh else 'already installed'} in {broker.lib_dir}")


@kafka.command()
@secured_option
@click.pass_context
def start(ctx: click.Context, secured: bool) -> None:
    """Start the broker and wait until it answers (no-op when it is running)."""
    broker = _local(ctx, "start", secured)
    if broker is None:
        return
    try:
        started = broker.start()
    except LocalKafkaError as exc:
        fail(str(exc))
    click.echo(f"Kafka {'started' if started else 'already running'} on {broker.bootstrap}")
    if isinstance(broker, SecuredLocalKafka):
        click.echo(f"SASL_SSL with SCRAM-SHA-512 (user shopsync); mutual TLS on {broker.mtls_bootstrap}. "
                   f"Client settings: source {broker.client_env_file}")


@kafka.command()
@secured_option
@click.pass_context
def stop(ctx: click.Context, secured: bool) -> None:
    """Stop the broker gracefully (no-op when it is stopped); data is kept."""
    broker = _local(ctx, "stop", secured)
    if broker is None:
        return
    click.echo("Kafka stopped" if broker.stop() else "Kafka was not running (from this directory)")


@kafka.command()
@json_option
@secured_option
@click.pass_context
def status(ctx: click.Context, as_json: bool, secured: bool) -> None:
    """Say whether the broker is running, where, and which version; exits 1 when it is not."""
    broker = _local(ctx, "status", secured)
    if broker is None:
        return
    st = broker.status()
    if as_json:
        print_json({"running": st.running, "pid": st.pid, "bootstrap": st.bootstrap, "owned": st.owned,
                    "version": st.version, "installed": broker.is_installed(), "data_dir": str(broker.data_dir)})
    elif st.running:
        owner = f"pid {st.pid}" if st.owned else "not started from this directory"
        click.echo(f"running on {st.bootstrap} ({owner}), Kafka {st.version}, data in {broker.data_dir}")
    else:
        click.echo(f"not running (would listen on {st.bootstrap}); installed: {broker.is_installed()}")
    raise SystemExit(0 if st.running else 1)


@kafka.command()
@click.option("-n", "--lines", default=50, show_default=True, help="How many lines to show.")
@secured_option
@click.pass_context
def logs(ctx: click.Context, lines: int, secured: bool) -> None:
    """Show the end of the broker's log."""
    broker = _local(ctx, "logs", secured)
    if broker is not None:
        click.echo(broker.log_tail(lines))

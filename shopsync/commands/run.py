"""`shopsync run`: broker, topics and every service, in the foreground until Ctrl-C (what `make run` calls).

Without TikTok credentials (TIKTOK_APP_KEY unset) it runs the demo: the sandbox plays TikTok, a store is linked
through the real OAuth callback, mappings are seeded and orders start flowing. The demo runs on an external cluster
(KAFKA_BOOTSTRAP_SERVERS) only when `--demo` says so, and always under its own topic prefix and consumer groups.
"""

from __future__ import annotations

import asyncio
import signal
import time
from urllib.parse import urlsplit

import click

from shared.settings import Settings, load_settings
from shopsync.console import fail, settings_from
from shopsync.demo import demo_environment, demo_topic_prefix, run_demo, wait_healthy
from shopsync.localkafka import LocalKafka, LocalKafkaError, port_open
from shopsync.supervisor import Child, Supervisor
from shopsync.topic_admin import ensure_topics


def local_url(host: str, port: int) -> str:
    """Where this machine reaches a server bound to `host` (a wildcard bind answers on loopback)."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def pipeline_children(settings: Settings, demo: bool) -> list[Child]:
    """The services `shopsync run` starts, in start order, with the URL each answers health checks on."""
    s = settings
    children = [
        Child("stores", ["stores-owner"],
              f"{local_url(s.shopsync_stores_owner_host, s.shopsync_stores_owner_port)}/readyz"),
        Child("gateway", ["gateway"], f"{local_url(s.shopsync_gateway_host, s.shopsync_gateway_port)}/healthz"),
        Child("ingest", ["ingest"], f"{local_url(s.shopsync_ingest_host, s.shopsync_ingest_port)}/healthz"),
        Child("mapping", ["mapping"], f"{s.shopsync_mapping_url}/readyz"),
        Child("audit", ["audit"], f"{s.shopsync_audit_url}/healthz"),
        Child("sync", ["store-sync"], f"{local_url(s.shopsync_store_sync_host, s.shopsync_store_sync_port)}/healthz"),
        Child("console", ["console"], f"{local_url(s.shopsync_console_host, s.shopsync_console_port)}/healthz"),
    ]
    if demo:
        seed = str(int(time.time()) % 10**6)  # a fresh world each run: order ids never collide with earlier runs
        children.insert(0, Child("sandbox", ["sandbox", "--time-factor", "60", "--seed", seed],
                                 f"{local_url(s.shopsync_sandbox_host, s.shopsync_sandbox_port)}/healthz"))
    return children


def demo_mode(settings: Settings, demo: bool | None) -> bool:
    """Whether `shopsync run` plays the sandbox demo: implied only without TikTok credentials or external Kafka."""
    if demo is not None:
        return demo
    if settings.tiktok_app_key:
        return False
    if settings.kafka_bootstrap_servers:
        prefix = demo_topic_prefix(settings.shopsync_topic_prefix)
        fail(f"KAFKA_BOOTSTRAP_SERVERS is set ({settings.kafka_bootstrap_servers}) and TIKTOK_APP_KEY is not, so "
             "`shopsync run` would start the sandbox demo on that cluster. Pass --demo to run the demo there anyway "
             f"(its topics and consumer groups are prefixed {prefix!r}), or set TIKTOK_APP_KEY and the other TikTok "
             "credentials to run the pipeline.")
    return True


@click.command()
@click.option("--demo/--no-demo", default=None,
              help="Run the sandbox demo under the topic prefix `<SHOPSYNC_TOPIC_PREFIX>demo.` (default: when "
                   "TIKTOK_APP_KEY is not set and no external cluster is configured).")
@click.pass_context
def run(ctx: click.Context, demo: bool | None) -> None:
    """Start Kafka (unless KAFKA_BOOTSTRAP_SERVERS is set), create topics, start every service; Ctrl-C stops all."""
    settings = settings_from(ctx)
    demo = demo_mode(settings, demo)
    env = demo_environment(settings.shopsync_home, settings.shopsync_sandbox_port,
                           settings.shopsync_topic_prefix) if demo else {}
    if demo:
        settings = load_settings(**{k.lower(): v for k, v in env.items()})
    busy = [c for c in pipeline_children(settings, demo) if c.url and port_open(urlsplit(c.url).port or 80)]
    if busy:
        fail("these ports are already in use (is shopsync already running?): "
             + ", ".join(f"{c.name} {c.url}" for c in busy))
    broker = LocalKafka.from_settings(settings) if settings.uses_local_kafka else None
    started_broker = False
    if broker is not None:
        click.echo("Starting the local Kafka broker (the first run downloads its jars with Maven)...")
        try:
            started_broker = broker.start()
        except LocalKafkaError as exc:
            fail(str(exc))
    click.echo(f"Kafka {settings.bootstrap_servers} ({'started' if started_broker else 'already running'})")
    report = asyncio.run(ensure_topics(settings))
    click.echo(f"Topics: {len(report.created)} created, {len(report.unchanged) + len(report.reconfigured)} present"
               + (f" (demo prefix {settings.shopsync_topic_prefix!r})" if demo else ""))
    for problem in report.problems:
        click.echo(f"  topic problem: {problem}", err=True)

    supervisor = Supervisor(settings.shopsync_home / "logs", env)
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        children = pipeline_children(settings, demo)
        for child in children:
            supervisor.start(child)
        asyncio.run(wait_healthy([c.url for c in children if c.url]))
        for child in children:
            click.echo(f"  {child.name:<8} {child.url.rsplit('/', 1)[0] if child.url else ''}   "
                       f"log: {supervisor.logs_dir / (child.name + '.log')}")
        if demo:
            sandbox_url = local_url(settings.shopsync_sandbox_host, settings.shopsync_sandbox_port)
            for line in asyncio.run(run_demo(env, sandbox_url)):
                click.echo(line)
            click.echo(f"\nTry, in another shell (first: source {settings.shopsync_home / 'demo.env'}):\n"
                       "  .venv/bin/shopsync tail orders.enriched\n"
                       "  .venv/bin/shopsync mappings unmapped\n"
                       "  .venv/bin/shopsync stores list\n"
                       "  .venv/bin/shopsync explain ORDER_ID\n"
                       "  .venv/bin/shopsync ship --shop 'Main store' ORDER_ID --carrier usps --tracking 9400...\n"
                       "  .venv/bin/shopsync inventory set OMS-BLUE-M 12 && "
                       ".venv/bin/shopsync inventory status OMS-BLUE-M\n")
        console = local_url(settings.shopsync_console_host, settings.shopsync_console_port)
        click.echo(f"Console: {console}  (sign in with SHOPSYNC_ADMIN_TOKEN"
                   + (f" from {settings.shopsync_home / 'demo.env'})" if demo else ")"))
        click.echo("Running. Press Ctrl-C to stop.")
        while not stopping:
            for child in supervisor.dead():
                click.echo(f"{child.name} exited with code {child.proc.returncode if child.proc else '?'}; "
                           f"see {supervisor.logs_dir / (child.name + '.log')}", err=True)
                stopping = True
            time.sleep(0.3)
    except Exception as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    finally:
        click.echo("Stopping services...")
        supervisor.stop_all()
        if broker is not None and started_broker:
            click.echo("Stopping Kafka...")
            broker.stop()
        click.echo("Stopped.")

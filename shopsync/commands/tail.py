"""`shopsync tail TOPIC`: pretty-print a topic's records with their headers."""

from __future__ import annotations

import asyncio

import click
import orjson
from rich.console import Console

from shared.kafka import create_consumer
from shared.settings import Settings
from shared.topics import TOPIC_SPECS
from shopsync.console import fail, settings_from


@click.command()
@click.argument("topic")
@click.option("--key", default=None, help="Only records with this key.")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest record (default: new records only).")
@click.option("--max", "max_records", type=int, default=None, help="Stop after this many records.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def tail(ctx: click.Context, topic: str, key: str | None, from_beginning: bool, max_records: int | None,
         as_json: bool) -> None:
    """Follow TOPIC (a product topic name such as orders.enriched) until Ctrl-C."""
    if topic not in TOPIC_SPECS:
        fail(f"unknown topic {topic!r}; one of: {', '.join(sorted(TOPIC_SPECS))}")
    try:
        asyncio.run(_tail(settings_from(ctx), topic, key, from_beginning, max_records, as_json))
    except KeyboardInterrupt:
        pass


async def _tail(settings: Settings, topic: str, key: str | None, from_beginning: bool, max_records: int | None,
                as_json: bool) -> None:
    console = Console()
    consumer = create_consumer(settings, None, topic, auto_offset_reset="earliest" if from_beginning else "latest")
    await consumer.start()
    shown = 0
    try:
        while max_records is None or shown < max_records:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    if key is not None and (r.key or b"").decode(errors="replace") != key:
                        continue
                    try:
                        value = orjson.loads(r.value) if r.value is not None else None
                    except orjson.JSONDecodeError:
                        value = (r.value or b"").decode(errors="replace")
                    record = {"key": (r.key or b"").decode(errors="replace"), "partition": r.partition,
                              "offset": r.offset, "headers": {k: v.decode(errors="replace") for k, v in r.headers},
                              "value": value}
                    if as_json:
                        print(orjson.dumps(record).decode(), flush=True)
                    else:
                        console.rule(f"{topic} p{r.partition}@{r.offset} key={record['key']}")
                        console.print(record["headers"])
                        console.print_json(data=value) if isinstance(value, (dict, list)) else console.print(value)
                    shown += 1
                    if max_records is not None and shown >= max_records:
                        return
    finally:
        await consumer.stop()

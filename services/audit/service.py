"""The audit service: a consumer group over the order topics feeding the SQLite index, and its HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from services.audit.store import AuditStore
from services.audit.timeline import AUDITED, Entry, entry_for
from shared.kafka import BATCHED_FETCHES, commit_owned, create_consumer
from shared.settings import Settings
from shared.topics import base_name, topic_name

GROUP = "shopsync-audit"


async def index_forever(settings: Settings, store: AuditStore, stop: asyncio.Event) -> None:
    consumer = create_consumer(settings, topic_name(GROUP, settings.shopsync_topic_prefix), *AUDITED,
                               **BATCHED_FETCHES)  # every record of seven topics, for an operator's timeline
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            rows: list[tuple[str, int, int, Entry]] = []
            for tp, records in batches.items():
                topic = base_name(tp.topic, settings.shopsync_topic_prefix)
                for r in records:
                    entry = entry_for(topic, r.key, r.value, r.headers, r.timestamp)
                    if entry is not None:
                        rows.append((topic, r.partition, r.offset, entry))
            if rows:
                await asyncio.to_thread(store.add, rows)
            if batches:
                await commit_owned(consumer)
    finally:
        await consumer.stop()


def create_app(settings: Settings, store: AuditStore) -> Starlette:
    stop = asyncio.Event()

    async def order(request: Request) -> Response:
        rows = store.timeline(request.path_params["order_id"], request.query_params.get("shop_id"))
        return JSONResponse(rows)

    async def skipped(request: Request) -> Response:
        return JSONResponse(store.skipped_since(request.query_params.get("since", "")))

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(index_forever(settings, store, stop))
        yield
        stop.set()
        await task
        store.close()

    return Starlette(routes=[Route("/orders/{order_id}", order), Route("/skipped", skipped),
                             Route("/healthz", healthz)], lifespan=lifespan)


def app_factory() -> Starlette:
    from shared.settings import load_settings

    settings = load_settings()
    return create_app(settings, AuditStore(settings.shopsync_audit_db))

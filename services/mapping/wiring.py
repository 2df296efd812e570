"""The mapping process: the service and its admin API in one app (the lifespan runs the service)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from services.mapping.api import create_api
from services.mapping.service import GROUP, MappingMetrics, MappingService
from services.mapping.state import OrderState
from services.mapping.store import StateStore
from shared.admin import serve
from shared.kafka import create_consumer, create_managed_producer
from shared.logging import get_logger
from shared.process import exit_if_failed, tune_gc
from shared.settings import Settings
from shared.topics import topic_name

log = get_logger("mapping")
# A batch of 1,000 records holds ~30,000 objects alive (records, their header tuples, futures, outbox entries): with
# a young collection every 10,000 allocations each batch was walked and promoted, then walked again in generation 1
# (~10 us of GC per record); every 100,000 walks each batch's survivors about once.
GC_YOUNG_THRESHOLD = 100_000


def build_service(settings: Settings, group_id: str | None = None) -> MappingService:
    """The service with its own producer, consumer (in group `group_id`, default the mapping group) and local state
    store (`SHOPSYNC_STATE_DIR/<group>`, a file no other running instance holds)."""
    metrics, group = MappingMetrics(), group_id or topic_name(GROUP, settings.shopsync_topic_prefix)
    store = StateStore.open_own(settings.shopsync_state_dir / group, "mapping")
    return MappingService(settings, producer=create_managed_producer(settings, "mapping", metrics.registry),
                          consumer=create_consumer(settings, group, lag=metrics.lag), state=OrderState(store),
                          metrics=metrics)


def build_app(settings: Settings, group_id: str | None = None) -> tuple[Starlette, MappingService]:
    """The admin API (the service's own app) whose lifespan runs the service."""
    service = build_service(settings, group_id)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(serve(service))
        task.add_done_callback(exit_if_failed("mapping"))
        try:
            yield
        finally:
            service.stop()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # a failure: `exit_if_failed` logged it
                await task

    return create_api(service, settings.shopsync_admin_token.get_secret_value(), lifespan), service


def app_factory() -> Starlette:
    """uvicorn `--factory` entry point (called inside the server's event loop, as aiokafka requires)."""
    from shared.logging import configure_logging
    from shared.settings import load_settings
    from shared.telemetry import configure_tracing

    settings = load_settings()
    configure_logging(settings.shopsync_log_level,
                      "json" if settings.shopsync_log_format == "auto" else settings.shopsync_log_format)
    configure_tracing("shopsync-mapping")
    app = build_app(settings)[0]
    tune_gc(GC_YOUNG_THRESHOLD)
    return app

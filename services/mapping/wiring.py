"""The mapping process: the service and its admin API in one app (the lifespan runs the service)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from services.mapping.api import create_api
from services.mapping.service import MappingMetrics, MappingService
from shared.kafka import create_managed_producer
from shared.logging import get_logger
from shared.process import exit_if_failed
from shared.settings import Settings

log = get_logger("mapping")


def build_app(settings: Settings, group_id: str | None = None) -> tuple[Starlette, MappingService]:
    metrics = MappingMetrics()
    producer = create_managed_producer(settings, "mapping", metrics.registry)
    service = MappingService(settings, producer, group_id=group_id, metrics=metrics)
    stop = asyncio.Event()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await producer.start()
        task = asyncio.get_running_loop().create_task(service.run(stop))
        task.add_done_callback(exit_if_failed("mapping"))
        try:
            yield
        finally:
            stop.set()
            await task
            await service.flush()
            await producer.stop()

    return create_api(service, settings.shopsync_admin_token.get_secret_value(), lifespan), service


def app_factory() -> Starlette:
    """uvicorn `--factory` entry point (called inside the server's event loop, as aiokafka requires)."""
    from shared.logging import configure_logging
    from shared.settings import load_settings

    settings = load_settings()
    configure_logging(settings.shopsync_log_level,
                      "json" if settings.shopsync_log_format == "auto" else settings.shopsync_log_format)
    return build_app(settings)[0]

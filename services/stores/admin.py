"""The owner's admin port: `/healthz`, `/readyz`, `/metrics`; its lifespan builds and runs the service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from services.stores.service import StoresService
from shared.health import readiness
from shared.process import exit_if_failed


async def healthz(_: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    service: StoresService = request.state.service
    return await readiness(service.producer, starting=not service.ready.is_set())


async def metrics(request: Request) -> Response:
    service: StoresService = request.state.service
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def admin_app(build: Callable[[], StoresService]) -> Starlette:
    """The admin app; `build` makes the service (inside the server's event loop, as aiokafka requires)."""

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[dict[str, StoresService]]:
        async with build() as service:
            task = asyncio.get_running_loop().create_task(service.run())
            task.add_done_callback(exit_if_failed("stores_owner"))
            try:
                yield {"service": service}
            finally:
                service.stop()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)],
                     lifespan=lifespan)

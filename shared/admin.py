"""The admin port every consuming service serves: `/healthz`, `/readyz`, `/metrics` (plus its own routes).

Every service has one shape (`Service`): built from its collaborators with no I/O, started and stopped with
`async with`, run with `run()` until `stop()`. The admin app's lifespan builds it inside the server's event loop (as
aiokafka requires) and runs it beside the server, so `/healthz` answers while the service still waits for Kafka,
and `/readyz` says `starting` until the service has set `ready`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol, Self

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from shared.health import readiness
from shared.process import exit_if_failed
from shared.producer import Sender


class Service(Protocol):
    """What the admin app needs of a service."""

    @property
    def producer(self) -> Sender: ...

    @property
    def registry(self) -> CollectorRegistry: ...

    @property
    def ready(self) -> asyncio.Event: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def run(self) -> None: ...

    def stop(self) -> None: ...


async def serve(service: Service) -> None:
    """Start `service`, run it until `stop()`, stop it."""
    async with service:
        await service.run()


async def healthz(_: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    service: Service = request.state.service
    return await readiness(service.producer, starting=not service.ready.is_set())


async def metrics(request: Request) -> Response:
    service: Service = request.state.service
    return Response(generate_latest(service.registry), media_type=CONTENT_TYPE_LATEST)


def admin_app(name: str, build: Callable[[], Service], routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The admin app of service `name`; `build` makes the service, `routes` are its own (they find it in
    `request.state.service`). A service that fails ends the process (`exit_if_failed`)."""

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[dict[str, Service]]:
        service = build()
        task = asyncio.get_running_loop().create_task(serve(service))
        task.add_done_callback(exit_if_failed(name))
        try:
            yield {"service": service}
        finally:
            service.stop()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # a failure: `exit_if_failed` logged it
                await task

    return Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics),
                             *routes], lifespan=lifespan)

"""Run an ASGI app under a real uvicorn server on a free loopback port, inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn

from tests.waiting import eventually


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serve_app(app: object, port: int | None = None) -> AsyncIterator[str]:
    """Serve `app` (lifespan included) and yield its base URL; shut it down on exit."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.get_running_loop().create_task(server.serve())
    await eventually(lambda: server.started or task.done(), within=15, every=0.02, what=f"uvicorn up on port {port}")
    if not server.started:
        task.result()  # it stopped before it started: its error, if it raised one
        raise AssertionError(f"uvicorn stopped before it started on port {port}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task

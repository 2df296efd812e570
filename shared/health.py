"""Readiness answers shared by the services' admin apps."""

from __future__ import annotations

from starlette.responses import PlainTextResponse, Response

from shared.producer import ManagedProducer, Sender


async def readiness(producer: Sender | None, *, starting: bool = False) -> Response:
    """200 while the service runs and its producer gets records acknowledged; 503 with the reason otherwise."""
    if starting or producer is None:
        problem: str | None = "starting"
    elif isinstance(producer, ManagedProducer):
        problem = await producer.check()
    else:
        problem = None  # a plain producer (narrow tests) has no supervision to ask
    if problem is None:
        return PlainTextResponse("ready")
    return PlainTextResponse(f"not ready: {problem}", status_code=503)

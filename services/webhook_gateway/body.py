"""Read a request body with a hard size limit, without buffering what lies past it."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request


class BodyTooLarge(Exception):
    """The body exceeds the limit."""


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The raw body bytes; raises BodyTooLarge as soon as more than `limit` bytes are announced or arrive."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:  # the ASGI messages themselves: Starlette's stream() costs more than the rest of this function
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)

"""The end-to-end bench's load driver: pre-signed webhook requests pushed at a fixed rate over keep-alive connections.

Every request is built (body, signature, HTTP/1.1 head) before the clock starts, so a push costs one socket write
and reading a short answer. The schedule is open-loop: request i is due at start + i / rate whatever the gateway
does; `due_at` and `sent_at` of each push show whether the driver (or a full set of busy connections) lagged.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from typing import Any

import orjson

from shared.tiktok.signing import webhook_signature

ORDER_STATUS_CHANGE = 1
_notification_ids = itertools.count(7327112393057371910)


@dataclass(slots=True)
class Push:
    """One pre-built webhook request and what became of it (wall-clock seconds)."""

    order_id: str
    request: bytes
    due_at: float = 0.0
    sent_at: float = 0.0
    acked_at: float = 0.0
    status: int = 0


def signed_request(host: str, path: str, app_key: str, app_secret: str, body: bytes) -> bytes:
    """The whole HTTP/1.1 request TikTok would send with `body`: keep-alive, signed over the exact bytes."""
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Authorization: {webhook_signature(app_key, app_secret, body)}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def order_status_pushes(orders: list[dict[str, Any]], host: str, app_key: str, app_secret: str) -> list[Push]:
    """Type-1 ORDER_STATUS_CHANGE webhooks for `orders` (the sandbox's bulk answer: `order_id`, `order_status`,
    `is_on_hold_order`, `update_time`, `shop_id`), each with its own notification id (the ingest drops a
    notification id it has acted on as TikTok's redelivery)."""
    pushes = []
    for order in orders:
        data = {k: order[k] for k in ("order_id", "order_status", "is_on_hold_order", "update_time")}
        body = orjson.dumps({"type": ORDER_STATUS_CHANGE, "tts_notification_id": str(next(_notification_ids)),
                             "shop_id": order["shop_id"], "timestamp": int(time.time()), "data": data})
        pushes.append(Push(str(order["order_id"]), signed_request(host, "/webhooks/tiktok", app_key, app_secret,
                                                                    body)))
    return pushes


async def push_at_rate(host: str, port: int, pushes: list[Push], rate: float, connections: int = 32) -> None:
    """Push every request at `rate` per second (open loop) over `connections` keep-alive connections."""
    queue: asyncio.Queue[Push | None] = asyncio.Queue()
    streams = [await asyncio.open_connection(host, port) for _ in range(connections)]
    senders = [asyncio.create_task(_send_from(queue, reader, writer)) for reader, writer in streams]
    start_mono, start_wall = time.monotonic() + 0.05, time.time() + 0.05
    for n, push in enumerate(pushes):
        offset = n / rate
        delay = start_mono + offset - time.monotonic()
        if delay > 0.001:
            await asyncio.sleep(delay)
        push.due_at = start_wall + offset
        queue.put_nowait(push)
    for _ in senders:
        queue.put_nowait(None)
    await asyncio.gather(*senders)


async def _send_from(queue: asyncio.Queue[Push | None], reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
    try:
        while (push := await queue.get()) is not None:
            push.sent_at = time.time()
            writer.write(push.request)
            push.status = await _read_answer(reader)
            push.acked_at = time.time()
    finally:
        writer.close()


async def _read_answer(reader: asyncio.StreamReader) -> int:
    """The status of one HTTP/1.1 answer, its body read and dropped (Content-Length or chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, chunked = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while (size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")
    elif length:
        await reader.readexactly(length)
    return status

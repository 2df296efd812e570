"""At the edge of the internet, under a real uvicorn server: stalled bodies get 408, too many requests 503."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import httpx
import pytest

from services.webhook_gateway.app import create_app
from shared.settings import Settings
from tests.fakes import MemoryPublisher
from tests.servers import serve_app
from tests.waiting import eventually
from tests.webhooks import sign, webhook_body

SLOW_CLIENT_PAUSE_S = 0.3  # the client's pause between two pieces of one body, well inside the read timeout


class Upload:
    """A raw HTTP/1.1 client that sends the headers and only part of a signed webhook body."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rest: bytes) -> None:
        self.reader, self.writer, self.rest = reader, writer, rest

    @classmethod
    async def start(cls, base_url: str, sent: int) -> Upload:
        body = webhook_body()
        url = urlsplit(base_url)
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        head = "".join(f"{name}: {value}\r\n" for name, value in sign(body).items())
        writer.write(f"POST /webhooks/tiktok HTTP/1.1\r\nHost: gw\r\n{head}Content-Length: {len(body)}\r\n\r\n"
                     .encode() + body[:sent])
        await writer.drain()
        return cls(reader, writer, body[sent:])

    async def finish(self) -> None:
        self.writer.write(self.rest)
        await self.writer.drain()

    async def answer(self, *, until_closed: bool = False, timeout_s: float = 5.0) -> tuple[int, bytes]:
        """The status code and the raw answer: its head, or all until the server closes the connection."""
        async with asyncio.timeout(timeout_s):
            if until_closed:
                raw = await self.reader.read()
            else:
                raw = await self.reader.readuntil(b"\r\n\r\n")
        return int(raw.split(b" ", 2)[1]), raw

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@pytest.mark.parametrize("sent", [0, 100])
async def test_a_stalled_body_is_cut_off_with_408_within_the_timeout(gateway_settings: Settings,
                                                                     memory_publisher: MemoryPublisher,
                                                                     sent: int) -> None:
    settings = gateway_settings.model_copy(update={"shopsync_gateway_read_timeout_s": 0.3})
    async with serve_app(create_app(settings, memory_publisher)) as url:
        started = time.monotonic()
        upload = await Upload.start(url, sent)
        status, raw = await upload.answer(until_closed=True)  # the connection is closed: the rest is not awaited
        elapsed = time.monotonic() - started
        assert status == 408 and b"read_timeout" in raw and b"connection: close" in raw.lower()
        assert 0.3 <= elapsed < 1.0  # cut off at the timeout (swept every 0.06 s), not whenever uvicorn gives up
        await upload.close()
        async with httpx.AsyncClient(base_url=url) as http:  # the gateway still serves
            body = webhook_body(notification_id="after-408")
            assert (await http.post("/webhooks/tiktok", content=body, headers=sign(body))).status_code == 200
    assert [value for _, value, _ in memory_publisher.records] == [body]


async def test_a_body_arriving_in_time_in_pieces_is_accepted(gateway_settings: Settings,
                                                             memory_publisher: MemoryPublisher) -> None:
    settings = gateway_settings.model_copy(update={"shopsync_gateway_read_timeout_s": 2.0})
    async with serve_app(create_app(settings, memory_publisher)) as url:
        upload = await Upload.start(url, 50)
        await asyncio.sleep(SLOW_CLIENT_PAUSE_S)
        await upload.finish()
        status, _ = await upload.answer()
        await upload.close()
    assert status == 200 and len(memory_publisher.records) == 1


async def test_requests_beyond_the_limit_get_503_with_retry_after_while_it_is_held(
        gateway_settings: Settings, memory_publisher: MemoryPublisher) -> None:
    settings = gateway_settings.model_copy(update={"shopsync_gateway_max_concurrent": 2,
                                                   "shopsync_gateway_read_timeout_s": 10.0})
    async with serve_app(create_app(settings, memory_publisher)) as url, httpx.AsyncClient(base_url=url) as http:
        held = [await Upload.start(url, 100) for _ in range(2)]
        body = webhook_body(notification_id="over-limit")

        async def refused() -> httpx.Response | None:
            answer = await http.post("/webhooks/tiktok", content=body, headers=sign(body))
            assert answer.status_code in (200, 503)  # 200 only until both held uploads are inside the gateway
            return answer if answer.status_code == 503 else None

        over = await eventually(refused, within=5, what="a 503 while two uploads hold both places")
        memory_publisher.records.clear()
        assert over.headers["retry-after"] == "1"
        assert (await http.get("/healthz")).status_code == 200  # probes are not counted
        metrics = (await http.get("/metrics")).text
        assert 'gateway_requests_total{result="overloaded"}' in metrics

        await held[0].finish()
        assert (await held[0].answer())[0] == 200
        again = await http.post("/webhooks/tiktok", content=body, headers=sign(body))
        assert again.status_code == 200  # a place came free
        for upload in held:
            await upload.close()
    assert len(memory_publisher.records) == 2

"""`Consumer.stop` finishes closing when aiokafka's fetcher lets a cancelled fetch's CancelledError escape."""

from __future__ import annotations

import asyncio
import types
from typing import Any

import pytest
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.errors import KafkaConnectionError

from shared.kafka import Consumer


class _Client:
    def __init__(self) -> None:
        self.closed = False

    async def send(self, node_id: int, request: Any) -> Any:
        raise KafkaConnectionError("broker gone")

    async def close(self) -> None:
        self.closed = True


async def _consumer_with_a_fetch_in_its_retry_backoff() -> tuple[Consumer, _Client]:
    """A consumer whose fetcher (aiokafka's own `close` and `_proc_fetch_request`) has one fetch that failed and is
    sleeping its retry backoff, as after a broker went away."""
    client = _Client()
    fetcher: Any = types.SimpleNamespace(_client=client, _retry_backoff=30.0, _fetch_waiters=set(),
                                         _invalidate_preferred_read_replica_for_node=lambda *a: None)
    fetcher._fetch_task = asyncio.get_running_loop().create_task(asyncio.sleep(30))
    fetch = asyncio.get_running_loop().create_task(Fetcher._proc_fetch_request(fetcher, None, 1, None))
    fetcher._pending_tasks = {fetch}
    fetcher._notify = types.MethodType(Fetcher._notify, fetcher)
    fetcher.close = types.MethodType(Fetcher.close, fetcher)
    await asyncio.sleep(0.01)  # the fetch failed and sleeps its backoff
    consumer = Consumer("topic", bootstrap_servers="127.0.0.1:1")
    await consumer._client.close()
    consumer._fetcher, consumer._client, consumer._coordinator = fetcher, client, None
    return consumer, client


async def test_a_fetch_cancelled_in_its_retry_backoff_does_not_escape_stop() -> None:
    consumer, client = await _consumer_with_a_fetch_in_its_retry_backoff()
    await consumer.stop()  # aiokafka's own stop raises CancelledError here
    assert client.closed


async def test_stop_still_ends_when_its_caller_is_cancelled() -> None:
    consumer, _ = await _consumer_with_a_fetch_in_its_retry_backoff()
    task = asyncio.get_running_loop().create_task(consumer.stop())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

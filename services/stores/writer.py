"""Writes to `shopsync.stores`, the owner's alone: the next revision, the command's id, then into the view."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import orjson

from services.stores.view import COMMAND_HEADER, OwnerView
from shared.envelope import CloudEvent, rfc3339, to_headers
from shared.producer import Sender, deliver
from shared.settings import Settings
from shared.stores.commands import StoreCommand
from shared.stores.model import StoreRecord
from shared.topics import STORES, topic_name

CE_SOURCE = "shopsync/stores"


class RecordWriter:
    def __init__(self, producer: Sender, settings: Settings, view: OwnerView,
                 clock: Callable[[], float] = time.time) -> None:
        self._producer = producer
        self._topic = topic_name(STORES, settings.shopsync_topic_prefix)
        self._view = view
        self._clock = clock

    async def put(self, record: StoreRecord, command: StoreCommand) -> StoreRecord:
        """Write `record` as its key's next revision (acknowledged); the record written."""
        current = self._view.record(record.key)
        now = self._clock()
        written = replace(record, revision=(current.revision if current else 0) + 1, updated_at=int(now))
        value = orjson.dumps(written.to_dict())
        event = CloudEvent(id=f"{written.key}:r{written.revision}", source=CE_SOURCE,
                           type=f"shopsync.store.{written.status}", data=value, time=rfc3339(now), subject=written.key)
        await self._send(written.key, value, to_headers(event, [(COMMAND_HEADER, command.command_id)]), command)
        return written

    async def delete(self, key: str, command: StoreCommand) -> None:
        """Tombstone `key` (a used pending link), acknowledged."""
        await self._send(key, None, [(COMMAND_HEADER, command.command_id.encode())], command)

    async def _send(self, key: str, value: bytes | None, headers: list[tuple[str, bytes]],
                    command: StoreCommand) -> None:
        metadata = await deliver(self._producer, self._topic, value, key.encode(), headers)
        self._view.apply_own(key, value, metadata.offset, command.command_id)

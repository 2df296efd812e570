"""The stores owner in memory: its real handlers over an `OwnerView`, no Kafka. A TokenKeeper's `StoreCommands`
for tests that need neither a broker nor the sandbox; `table` is the view the keeper reads (always up to date);
`tiktok` is any scripted TikTok answering the calls the owner makes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson

from services.stores.context import OwnerContext
from services.stores.handlers import apply_command
from services.stores.metrics import StoresMetrics
from services.stores.view import OwnerView
from shared.stores.commands import CommandResult, StoreCommand
from shared.stores.crypto import TokenCipher
from shared.stores.model import StoreRecord


class MemoryWriter:
    """The owner's writer into the view alone; every record written is kept, in order."""

    def __init__(self, view: OwnerView) -> None:
        self.view = view
        self.written: list[StoreRecord] = []

    async def put(self, record: StoreRecord, command: StoreCommand) -> StoreRecord:
        current = self.view.record(record.key)
        written = replace(record, revision=(current.revision if current else 0) + 1)
        self.view.apply_own(written.key, orjson.dumps(written.to_dict()), len(self.written), command.command_id)
        self.written.append(written)
        return written

    async def delete(self, key: str, command: StoreCommand) -> None:
        self.view.apply_own(key, None, len(self.written), command.command_id)


class MemoryOwner:
    default_wait_s = 1.0

    def __init__(self, tiktok: Any, cipher: TokenCipher, *stores: StoreRecord,
                 clock: Callable[[], float] = time.time) -> None:
        self.table = OwnerView()
        self.table.stores = {s.shop_id: s for s in stores}
        self.writer = MemoryWriter(self.table)
        self.requests: list[StoreCommand] = []
        self._ctx = OwnerContext(self.table, self.writer,  # type: ignore[arg-type]  # the writer is duck-typed
                                 tiktok, cipher, self._forward, StoresMetrics(), clock)

    async def request(self, command: StoreCommand, wait: float | None = None) -> CommandResult:
        self.requests.append(command)
        result = await apply_command(self._ctx, command)
        assert result is not None, "a command answered elsewhere (a forwarded link): use `forwarded`"
        return result

    async def _forward(self, command: StoreCommand) -> None:
        await apply_command(self._ctx, command)

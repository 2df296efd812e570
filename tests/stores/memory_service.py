"""The real stores owner (`StoresService`: its redelivery rules, handlers, writer and answers) over in-memory topics,
to stop it at any point without a broker.

Commands are applied in batches, as the service does: the uncommitted commands of the moment, one at a time, then
their offsets committed (commands forwarded meanwhile come in the next batch). Every send and every commit is a
step; `crash_at(n)` makes the owner die at step n (before it happens: a send never written, offsets never
committed). `restart()` is a new owner on what the topics hold: its view read from the table and the answers given
so far remembered, as on a partition assignment; it gets every uncommitted command again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import orjson
from aiokafka.structs import ConsumerRecord

from services.stores.service import StoresService
from services.stores.view import OwnerView
from shared.settings import Settings, load_settings
from shared.stores.commands import CommandResult, StoreCommand, parse_command
from shared.stores.crypto import TokenCipher
from shared.stores.model import PENDING_KEY_PREFIX, StoreRecord
from shared.topics import STORE_COMMANDS, STORE_RESULTS, STORES, topic_name


class Crash(BaseException):
    """The owner process dies here (a BaseException: nothing in the service catches it)."""


class MemoryTopics:
    """Topics as lists of records (one partition each), written through `send_and_wait` like a plain producer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.logs: dict[str, list[ConsumerRecord]] = {}
        self.steps = 0  # sends and commits so far
        self.trail: list[tuple[str, str, bytes | None]] = []  # every step: (topic or "commit", key, value)
        self.crash_step: int | None = None

    def log(self, topic: str) -> list[ConsumerRecord]:
        return self.logs.setdefault(topic_name(topic, self.settings.shopsync_topic_prefix), [])

    def step(self, topic: str = "commit", key: bytes | None = None, value: bytes | None = None) -> None:
        if self.steps == self.crash_step:
            self.crash_step = None
            raise Crash(f"stopped at step {self.steps}")
        self.steps += 1
        self.trail.append((topic, (key or b"").decode(), value))

    async def send_and_wait(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                            headers: list[tuple[str, bytes]] | None = None) -> Any:
        self.step(topic, key, value)
        return self.append(topic, value, key, headers or [])

    def append(self, topic: str, value: bytes | None, key: bytes | None, headers: list[tuple[str, bytes]]) -> Any:
        log = self.logs.setdefault(topic, [])
        log.append(ConsumerRecord(topic=topic, partition=0, offset=len(log), timestamp=0, timestamp_type=0, key=key,
                                  value=value, checksum=None, serialized_key_size=len(key or b""),
                                  serialized_value_size=len(value or b""), headers=list(headers)))
        return SimpleNamespace(topic=topic, partition=0, offset=len(log) - 1)

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class MemoryService:
    """One stores owner instance on `topics`; `committed` is the command topic's committed offsets."""

    def __init__(self, topics: MemoryTopics, tiktok: Any, cipher: TokenCipher, committed: set[int],
                 clock: Callable[[], float] = time.time) -> None:
        self.topics = topics
        self._tiktok, self._cipher, self._clock = tiktok, cipher, clock
        self.committed = committed
        self.service = StoresService(topics.settings, producer=topics, consumer=None, webhooks=None, tiktok=tiktok,
                                     cipher=cipher, clock=clock)
        for record in topics.log(STORES):  # what `restore` reads
            self.service.view.apply_record(record)
        for record in topics.log(STORE_RESULTS):
            self.service._answers.remember(record.key.decode())

    @classmethod
    def new(cls, tiktok: Any, cipher: TokenCipher, clock: Callable[[], float] = time.time) -> MemoryService:
        return cls(MemoryTopics(load_settings()), tiktok, cipher, set(), clock)

    def restart(self) -> MemoryService:
        """A new instance after a stop: everything not committed is delivered again."""
        return MemoryService(self.topics, self._tiktok, self._cipher, self.committed, self._clock)

    def send(self, command: StoreCommand) -> StoreCommand:
        """A requester puts `command` on the command topic (not a step of the owner's)."""
        self.topics.append(topic_name(STORE_COMMANDS, self.topics.settings.shopsync_topic_prefix), command.to_json(),
                           command.key.encode(), [])
        return command

    async def drain(self, shops_first: bool = False) -> None:
        """Apply batches until every command is committed; `shops_first`: each batch's shop commands before its
        pending links' (partitions are independent; within one the order stays). Raises Crash at `crash_at`."""
        while batch := [r for r in self.topics.log(STORE_COMMANDS) if r.offset not in self.committed]:
            if shops_first:
                batch.sort(key=lambda r: (r.key or b"").startswith(PENDING_KEY_PREFIX.encode()))
            for record in batch:
                await self.service._apply_record(record)
            self.topics.step()
            self.committed.update(r.offset for r in batch)

    def crash_at(self, step: int) -> None:
        """Die at the owner's step `step` from now (0: before its next send or commit)."""
        self.topics.crash_step = self.topics.steps + step

    # ---- what the topics hold ----------------------------------------------------------------------------------
    def answers_to(self, command_id: str) -> list[CommandResult]:
        return [CommandResult.from_json(r.value) for r in self.topics.log(STORE_RESULTS)
                if r.key == command_id.encode()]

    def commands(self, kind: str) -> list[StoreCommand]:
        return [c for r in self.topics.log(STORE_COMMANDS) if (c := parse_command(r.value)).kind == kind]

    def history(self, key: str) -> list[StoreRecord | None]:
        """Every record written under `key` (None: a tombstone), oldest first."""
        return [None if r.value is None else StoreRecord.from_dict(orjson.loads(r.value))
                for r in self.topics.log(STORES) if r.key == key.encode()]

    def table(self) -> OwnerView:
        """A fresh reading of the table (what a new instance would see)."""
        return self.restart().service.view

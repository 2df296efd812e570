"""Answers on `shopsync.store-results`, and which commands were already answered (so each is applied once).

A command is redelivered when an owner stopped between applying it and committing its offset. The answers topic
says which commands were answered; it is read back whenever partitions are assigned (the instance that owned them
before may have answered some since), so a redelivered command is recognised and not applied a second time.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from shared.envelope import CloudEvent, rfc3339, to_headers
from shared.kafka import read_to_end
from shared.producer import Sender, deliver
from shared.settings import Settings
from shared.stores.commands import CommandResult
from shared.topics import STORE_RESULTS, topic_name

CE_SOURCE = "shopsync/stores"
MAX_REMEMBERED = 500_000  # answers of a day (the topic's retention) at far more commands than stores make


class Answers:
    def __init__(self, producer: Sender, settings: Settings, max_size: int = MAX_REMEMBERED) -> None:
        self._producer = producer
        self._settings = settings
        self._topic = topic_name(STORE_RESULTS, settings.shopsync_topic_prefix)
        self._max_size = max_size
        self._answered: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, command_id: object) -> bool:
        return command_id in self._answered

    def remember(self, command_id: str) -> None:
        self._answered[command_id] = None
        self._answered.move_to_end(command_id)
        while len(self._answered) > self._max_size:
            self._answered.popitem(last=False)

    async def restore(self) -> int:
        """Remember every command answered on the topic so far; how many there are."""
        count = 0
        async for record in read_to_end(self._settings, STORE_RESULTS):
            if record.key is not None:
                self.remember(record.key.decode("utf-8", "replace"))
                count += 1
        return count

    async def publish(self, result: CommandResult) -> None:
        """The answer, acknowledged, under its command id; remembered as answered."""
        value = result.to_json()
        event = CloudEvent(id=f"{result.command_id}:answer", source=CE_SOURCE,
                           type=f"shopsync.store.result.{result.status}", data=value, time=rfc3339(time.time()),
                           subject=result.key)
        await deliver(self._producer, self._topic, value, result.command_id.encode(), to_headers(event))
        self.remember(result.command_id)

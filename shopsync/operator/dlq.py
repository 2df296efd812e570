"""Dead letters: list them, and republish them to their source topic once the cause is fixed."""

from __future__ import annotations

from dataclasses import dataclass

from shared.dlq import DeadLetter, read_dead_letter
from shared.kafka import create_producer, read_to_end
from shared.settings import Settings
from shared.topics import DLQ, topic_name

REDRIVEN_PREFIX = "redriven:"


@dataclass(frozen=True, slots=True)
class Listed:
    partition: int
    offset: int
    letter: DeadLetter
    redriven: bool

    @property
    def marker(self) -> str:
        return f"{REDRIVEN_PREFIX}{self.partition}:{self.offset}"


async def list_dead_letters(settings: Settings) -> list[Listed]:
    """Every dead letter with whether it was already redriven (redrive markers live on the DLQ itself)."""
    letters: list[tuple[int, int, DeadLetter]] = []
    markers: set[str] = set()
    async for r in read_to_end(settings, DLQ):
        key = (r.key or b"").decode(errors="replace")
        if key.startswith(REDRIVEN_PREFIX):
            markers.add(key)
        else:
            letters.append((r.partition, r.offset, read_dead_letter(r.key, r.value, r.headers)))
    return [Listed(p, o, letter, f"{REDRIVEN_PREFIX}{p}:{o}" in markers) for p, o, letter in letters]


async def redrive(settings: Settings, letters: list[Listed]) -> int:
    """Republish each to its source topic (original key and headers), then mark it; returns how many."""
    producer = create_producer(settings)
    await producer.start()
    try:
        dlq = topic_name(DLQ, settings.shopsync_topic_prefix)
        for item in letters:
            await producer.send_and_wait(item.letter.source_topic, item.letter.value, key=item.letter.key,
                                         headers=item.letter.original_headers)
            await producer.send_and_wait(dlq, b"", key=item.marker.encode())
    finally:
        await producer.stop()
    return len(letters)

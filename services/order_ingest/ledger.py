"""Which offsets may be committed when records finish out of order (shops are worked on independently)."""

from __future__ import annotations

from aiokafka.structs import TopicPartition


class OffsetLedger:
    """Records handed out and finished, per partition.

    The commit point of a partition is its oldest unfinished offset (everything before it is done), or one past
    the newest offset seen when nothing is unfinished. Committing that point never skips an unfinished record.
    """

    def __init__(self) -> None:
        self._unfinished: dict[TopicPartition, set[int]] = {}
        self._next: dict[TopicPartition, int] = {}

    def begin(self, tp: TopicPartition, offset: int) -> None:
        self._unfinished.setdefault(tp, set()).add(offset)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def finish(self, tp: TopicPartition, offset: int) -> None:
        self._unfinished.get(tp, set()).discard(offset)

    def commit_points(self) -> dict[TopicPartition, int]:
        return {tp: min(self._unfinished[tp], default=nxt) for tp, nxt in self._next.items()}

    def in_flight(self) -> int:
        return sum(len(offsets) for offsets in self._unfinished.values())

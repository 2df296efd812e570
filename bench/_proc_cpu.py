"""CPU time of processes (with their child processes) and of the whole machine, read from /proc."""

from __future__ import annotations

import os
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, with_children: bool = True) -> float:
    """utime + stime of `pid` and (by default) its live descendants (a multi-worker uvicorn forks its workers)."""
    return sum(_own_seconds(p) for p in [pid, *(_descendants(pid) if with_children else ())])


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the machine since boot, all cores."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])
    return (total - idle) / TICKS, total / TICKS


def find_pid(cmdline_part: str) -> int | None:
    """The first process whose command line contains `cmdline_part` (e.g. the broker's main class)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if cmdline_part.encode() in (entry / "cmdline").read_bytes():
                    return int(entry.name)
            except OSError:
                continue
    return None


class CpuSampler:
    """Share of one core each named process used between `start()` and `stop()`; `machine` is all cores' busy
    share (2.0 = both cores busy), so what the named processes did not use is what the rest of the machine did.
    Processes named in `alone` are counted without their children (the bench itself, whose children are sampled
    by name)."""

    def __init__(self, pids: dict[str, int], alone: frozenset[str] = frozenset()) -> None:
        self.pids = pids
        self.alone = alone
        self._start: dict[str, float] = {}
        self._machine: tuple[float, float] = (0.0, 0.0)
        self._at = 0.0

    def start(self) -> None:
        self._start = {name: self._seconds(name) for name in self.pids}
        self._machine, self._at = machine_busy_seconds(), time.monotonic()

    def stop(self) -> dict[str, float]:
        elapsed = max(1e-9, time.monotonic() - self._at)
        shares = {name: round((self._seconds(name) - self._start[name]) / elapsed, 2) for name in self.pids}
        shares["machine"] = round((machine_busy_seconds()[0] - self._machine[0]) / elapsed, 2)
        return shares

    def _seconds(self, name: str) -> float:
        return cpu_seconds(self.pids[name], with_children=name not in self.alone)


def _own_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15 of the whole line)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo += children.get(child, [])
    return found

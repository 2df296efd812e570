"""W3C Trace Context: start a trace at the edge, continue it across services through the `traceparent` header."""

from __future__ import annotations

import re
from random import getrandbits

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def new_traceparent() -> str:
    """A fresh sampled traceparent: `00-<trace id>-<span id>-01`."""
    return f"00-{getrandbits(128) or 1:032x}-{getrandbits(64) or 1:016x}-01"  # ids need only be random, not secret


def child_traceparent(parent: str | None) -> str:
    """Continue `parent`'s trace with a new span id, or start a new trace when `parent` is absent or invalid."""
    match = _TRACEPARENT.match(parent or "")
    if not match or match.group(1) == "0" * 32:
        return new_traceparent()
    return f"00-{match.group(1)}-{getrandbits(64) or 1:016x}-{match.group(3)}"


def trace_id(traceparent: str | None) -> str | None:
    """The trace id of a traceparent value, for log lines."""
    match = _TRACEPARENT.match(traceparent or "")
    return match.group(1) if match else None

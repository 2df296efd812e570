"""W3C Trace Context: start a trace at the edge, continue it across services through the `traceparent` header."""

from __future__ import annotations

import os
import re

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def new_traceparent() -> str:
    """A fresh sampled traceparent: `00-<trace id>-<span id>-01`."""
    return f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"


def child_traceparent(parent: str | None) -> str:
    """Continue `parent`'s trace with a new span id, or start a new trace when `parent` is absent or invalid."""
    match = _TRACEPARENT.match(parent or "")
    if not match or match.group(1) == "0" * 32:
        return new_traceparent()
    return f"00-{match.group(1)}-{os.urandom(8).hex()}-{match.group(3)}"


def trace_id(traceparent: str | None) -> str | None:
    """The trace id of a traceparent value, for log lines."""
    match = _TRACEPARENT.match(traceparent or "")
    return match.group(1) if match else None

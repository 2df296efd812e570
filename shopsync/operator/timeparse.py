"""Times operators type: a duration back from now (`6h`, `30m`, `7d`) or an ISO time with a zone."""

from __future__ import annotations

import re
from datetime import datetime

_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(text: str, now: float, option: str = "--since") -> int:
    """Unix seconds; ValueError naming the option otherwise."""
    match = _RELATIVE.match(text.strip())
    if match:
        return int(now - int(match.group(1)) * _UNITS[match.group(2)])
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{option} {text!r} is neither a duration like 6h nor an ISO time") from None
    if moment.tzinfo is None:
        raise ValueError(f"{option} {text!r} needs a time zone (e.g. 2026-11-25T10:00:00Z)")
    return int(moment.timestamp())

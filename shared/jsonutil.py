"""JSON encoding with orjson: bytes in, bytes out."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    """Serialize to compact JSON bytes (keys kept in insertion order)."""
    return orjson.dumps(value)


def loads(raw: bytes | str) -> Any:
    """Parse JSON bytes; raises orjson.JSONDecodeError (a ValueError) on bad input."""
    return orjson.loads(raw)

"""CloudEvents 1.0 over Kafka, binary content mode.

The record value is the event data (JSON bytes); the attributes travel as `ce_*` headers and the data
content type as `content-type`, as the CloudEvents Kafka protocol binding specifies. Plain Kafka headers
(`shopsync_received_at`, `traceparent`, `replay_id`, ...) ride alongside and are not CloudEvents attributes.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

SPEC_VERSION = "1.0"
JSON = "application/json"
_REQUIRED = ("ce_specversion", "ce_id", "ce_source", "ce_type")
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")

Headers = Sequence[tuple[str, bytes]]


class EnvelopeError(ValueError):
    """A record whose headers are not a valid CloudEvents binary-mode envelope."""


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """One event: CloudEvents context attributes plus the data bytes."""

    id: str
    source: str
    type: str
    data: bytes
    time: str | None = None
    subject: str | None = None
    content_type: str = JSON
    extensions: dict[str, str] = field(default_factory=dict)


def rfc3339(ts: float | datetime) -> str:
    """Format a Unix timestamp (seconds) or datetime as RFC 3339 UTC, e.g. `2026-11-25T10:00:00Z`."""
    if isinstance(ts, datetime):
        moment = ts.astimezone(UTC)
        if moment.microsecond:
            return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    seconds = int(ts // 1)
    micros = round((ts - seconds) * 1_000_000)
    if micros == 1_000_000:
        seconds, micros = seconds + 1, 0
    base = _second(seconds)
    return f"{base}.{micros:06d}Z" if micros else f"{base}Z"


@functools.lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    """`YYYY-MM-DDTHH:MM:SS` of a whole second (cached: on the gateway's hot path most stamps share a second)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def to_headers(event: CloudEvent, extra: Iterable[tuple[str, str]] = ()) -> list[tuple[str, bytes]]:
    """Kafka headers for `event`, followed by plain `extra` headers."""
    headers = [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", event.id.encode()),
        ("ce_source", event.source.encode()),
        ("ce_type", event.type.encode()),
    ]
    if event.time is not None:
        headers.append(("ce_time", event.time.encode()))
    if event.subject is not None:
        headers.append(("ce_subject", event.subject.encode()))
    for name, value in event.extensions.items():
        if not _EXTENSION_NAME.match(name):
            raise EnvelopeError(f"CloudEvents extension name {name!r} must be 1-20 lowercase letters/digits")
        headers.append((f"ce_{name}", value.encode()))
    headers.append(("content-type", event.content_type.encode()))
    headers.extend((name, value.encode()) for name, value in extra)
    return headers


class EventHeaders:
    """`to_headers` for the events of one source and type that carry a time and a subject, with the constant headers
    encoded once: for per-record paths (same headers, in the same order, as `to_headers` builds)."""

    __slots__ = ("_content_type", "_source", "_specversion", "_type")

    def __init__(self, source: str, type: str, content_type: str = JSON) -> None:
        self._specversion = ("ce_specversion", SPEC_VERSION.encode())
        self._source = ("ce_source", source.encode())
        self._type = ("ce_type", type.encode())
        self._content_type = ("content-type", content_type.encode())

    def headers(self, id: str, time: str, subject: str,
                extra: Iterable[tuple[str, bytes]] = ()) -> list[tuple[str, bytes]]:
        """The headers of the event `id`, followed by `extra` (already encoded)."""
        return [self._specversion, ("ce_id", id.encode()), self._source, self._type, ("ce_time", time.encode()),
                ("ce_subject", subject.encode()), self._content_type, *extra]


def header_map(headers: Headers | None) -> dict[str, str]:
    """Headers as a str→str dict (last value wins); undecodable values are replaced, never raised."""
    return {name: value.decode("utf-8", "replace") for name, value in (headers or ())}


def from_record(headers: Headers | None, value: bytes | None) -> CloudEvent:
    """Read a CloudEvent from a Kafka record's headers and value; raises EnvelopeError when it is not one."""
    attrs = header_map(headers)
    missing = [name for name in _REQUIRED if not attrs.get(name)]
    if missing:
        raise EnvelopeError(f"missing CloudEvents header(s): {', '.join(missing)}")
    if attrs["ce_specversion"] != SPEC_VERSION:
        raise EnvelopeError(f"unsupported ce_specversion {attrs['ce_specversion']!r}")
    known = {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject"}
    extensions = {k[3:]: v for k, v in attrs.items() if k.startswith("ce_") and k not in known}
    return CloudEvent(
        id=attrs["ce_id"],
        source=attrs["ce_source"],
        type=attrs["ce_type"],
        data=value or b"",
        time=attrs.get("ce_time"),
        subject=attrs.get("ce_subject"),
        content_type=attrs.get("content-type", JSON),
        extensions=extensions,
    )

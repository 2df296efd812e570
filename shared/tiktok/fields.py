"""Reading TikTok's JSON into typed values field by field; a value that breaks the contract raises
`MalformedPayload` naming the field by its path (`data.package_list[0].order_id_list[1]`).

The rules, the same for webhooks and API answers (API facts §1.4, §3.1, §10.13):
- An absent field and a null one are the same: an optional field reads as None. A required field is
  `missing_field` when absent, `invalid_field` when null or of the wrong type. No value is invented here (the one
  documented default, for a missing `fulfillment_type`, lives in `shared.tiktok.orders.parse_order`).
- Ids are strings whatever their JSON type: TikTok sends its 64-bit ids as strings, but some official samples as
  numbers (types 5 and 16). A number too large for 64 bits, which orjson can only read as a float, is read exactly
  by `parse_exactly`. An id is at most 128 characters; an empty one is no id (TikTok sends "" for a package not
  assigned yet), so it reads as None where the id is optional and is invalid where it is required.
- Times are Unix seconds: a JSON integer, or a string of digits (type 7 sends `expiration_time` as a string);
  "" reads as absent.
- Text, enum values and money are JSON strings, kept as sent (money is never a number in TikTok's answers).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import orjson

from shared.tiktok.errors import MalformedPayload

MAX_ID_LENGTH = 128
T = TypeVar("T")
_ABSENT: Any = object()


class InexactNumber(MalformedPayload):
    """An id sent as a JSON number with a fraction or exponent: orjson reads integers beyond 64 bits that way."""


def load_object(raw: bytes) -> dict[str, Any]:
    """The JSON object in `raw` (orjson); `body` is invalid_json or not_an_object otherwise."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedPayload("body", f"is not valid UTF-8 JSON: {exc}", problem="invalid_json") from None
    if not isinstance(doc, dict):
        raise MalformedPayload("body", f"must be a JSON object, not {type(doc).__name__}",
                               problem="not_an_object")
    return doc


def parse_exactly(raw: bytes | Mapping[str, Any], parse: Callable[[Fields], T]) -> T:
    """`parse` over the object in `raw`. Bytes are read with orjson; a body whose ids include a number beyond
    64 bits (read as a float) is read again with the standard library, whose integers have no size limit. An
    already decoded mapping has lost those digits: such an id is invalid."""
    if isinstance(raw, Mapping):
        return parse(Fields(raw, ""))
    doc = load_object(raw)
    try:
        return parse(Fields(doc, ""))
    except InexactNumber:
        return parse(Fields(json.loads(raw), ""))


class Fields:
    """One JSON object from TikTok, read field by field; `path` prefixes the field names errors give."""

    __slots__ = ("_doc", "_path")

    def __init__(self, doc: Mapping[str, Any], path: str) -> None:
        self._doc = doc
        self._path = path

    # ---- ids ---------------------------------------------------------------------------------------------------
    def id(self, key: str) -> str:
        """A required id (a non-empty string, or a JSON integer)."""
        value = self._doc.get(key, _ABSENT)
        text = self._id_text(key, value)
        if text is None:
            raise self._required(key, value, "a non-empty id")
        return text

    def optional_id(self, key: str) -> str | None:
        return self._id_text(key, self._doc.get(key))

    def ids(self, key: str) -> tuple[str, ...]:
        """A required list of ids."""
        ids = []
        for i, item in enumerate(self._list(key)):
            text = self._id_text(f"{key}[{i}]", item)
            if text is None:
                raise self._invalid(f"{key}[{i}]", "a non-empty id", item)
            ids.append(text)
        return tuple(ids)

    def string_id(self, key: str) -> str:
        """A required id that must be a JSON string (the envelope's `shop_id`)."""
        value = self._doc.get(key, _ABSENT)
        if isinstance(value, str) and value.strip() and len(value) <= MAX_ID_LENGTH:
            return value
        raise self._required(key, value, f"a non-empty string of at most {MAX_ID_LENGTH} characters")

    def optional_token(self, key: str) -> str | None:
        """An optional opaque string kept exactly as sent (`tts_notification_id`): if present, non-empty."""
        value = self._doc.get(key)
        if value is None or (isinstance(value, str) and value and len(value) <= MAX_ID_LENGTH):
            return value
        raise self._invalid(key, f"a non-empty string of at most {MAX_ID_LENGTH} characters", value)

    def _id_text(self, key: str, value: Any) -> str | None:
        if isinstance(value, str):
            if len(value) > MAX_ID_LENGTH:
                raise self._invalid(key, f"at most {MAX_ID_LENGTH} characters", f"{len(value)} characters")
            return value if value.strip() else None
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if value is None or value is _ABSENT:
            return None
        if isinstance(value, float):
            raise InexactNumber(self._name(key), f"must be an id (a string or an integer), not {value!r}")
        raise self._invalid(key, "an id (a string or an integer)", value)

    # ---- numbers and times ---------------------------------------------------------------------------------------
    def integer(self, key: str, below: int) -> int:
        """A required JSON integer in [0, below)."""
        value = self._doc.get(key, _ABSENT)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._required(key, value, "an integer")
        if not 0 <= value < below:
            raise MalformedPayload(self._name(key), "is out of range")
        return value

    def time(self, key: str) -> int:
        """Required Unix seconds."""
        value = self._doc.get(key, _ABSENT)
        seconds = self._seconds(key, value)
        if seconds is None:
            raise self._required(key, value, "Unix seconds")
        return seconds

    def optional_time(self, key: str) -> int | None:
        return self._seconds(key, self._doc.get(key))

    def optional_count(self, key: str) -> int | None:
        """A quantity: a JSON integer."""
        value = self._doc.get(key)
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise self._invalid(key, "an integer", value)

    def _seconds(self, key: str, value: Any) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if isinstance(value, str) and value.isdigit() and value.isascii():
            return int(value)
        if value is None or value is _ABSENT or value == "":
            return None
        raise self._invalid(key, "Unix seconds (an integer or a string of digits)", value)

    # ---- text and flags ------------------------------------------------------------------------------------------
    def text(self, key: str) -> str:
        value = self._doc.get(key, _ABSENT)
        if isinstance(value, str):
            return value
        raise self._required(key, value, "a string")

    def optional_text(self, key: str) -> str | None:
        value = self._doc.get(key)
        if value is None or isinstance(value, str):
            return value
        raise self._invalid(key, "a string", value)

    def optional_texts(self, key: str) -> tuple[str, ...]:
        """A list of strings; absent reads as empty."""
        items = self._optional_list(key)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise self._invalid(f"{key}[{i}]", "a string", item)
        return tuple(items)

    def optional_flag(self, key: str) -> bool | None:
        value = self._doc.get(key)
        if value is None or isinstance(value, bool):
            return value
        raise self._invalid(key, "true or false", value)

    # ---- nested objects ------------------------------------------------------------------------------------------
    def object(self, key: str) -> Fields:
        value = self._doc.get(key, _ABSENT)
        if isinstance(value, dict):
            return Fields(value, f"{self._path}{key}.")
        raise self._required(key, value, "an object")

    def optional_object(self, key: str) -> Fields | None:
        value = self._doc.get(key)
        if value is None:
            return None
        if isinstance(value, dict):
            return Fields(value, f"{self._path}{key}.")
        raise self._invalid(key, "an object", value)

    def objects(self, key: str, *, required: bool = False) -> Iterator[Fields]:
        """Each object of a list (absent reads as empty unless `required`)."""
        for i, item in self._objects(key, required):
            yield Fields(item, f"{self._path}{key}[{i}].")

    def records(self, key: str) -> Iterator[Fields]:
        """Each object of an answer's list of records (`orders`), its fields named from the record itself (a
        record is reported on its own: `update_time`, not `orders[7].update_time`)."""
        for _, item in self._objects(key, False):
            yield Fields(item, "")

    def _objects(self, key: str, required: bool) -> Iterator[tuple[int, dict[str, Any]]]:
        items = self._list(key) if required else self._optional_list(key)
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise self._invalid(f"{key}[{i}]", "an object", item)
            yield i, item

    def _list(self, key: str) -> list[Any]:
        value = self._doc.get(key, _ABSENT)
        if isinstance(value, list):
            return value
        raise self._required(key, value, "a list")

    def _optional_list(self, key: str) -> list[Any]:
        value = self._doc.get(key)
        if value is None:
            return []
        if isinstance(value, list):
            return value
        raise self._invalid(key, "a list", value)

    # ---- errors --------------------------------------------------------------------------------------------------
    def _name(self, key: str) -> str:
        return f"{self._path}{key}"

    def _required(self, key: str, value: Any, expected: str) -> MalformedPayload:
        if value is _ABSENT:
            return MalformedPayload(self._name(key), "is required", problem="missing_field")
        return self._invalid(key, expected, value)

    def _invalid(self, key: str, expected: str, value: Any) -> MalformedPayload:
        return MalformedPayload(self._name(key), f"must be {expected}, not {_shown(value)}")


def _shown(value: Any) -> str:
    """A short rendering of an offending value for the error (never the whole of a large one)."""
    if isinstance(value, (dict, list)):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    text = json.dumps(value) if value is None or isinstance(value, (bool, int, float, str)) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."

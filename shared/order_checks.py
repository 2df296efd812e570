"""Order checks: a request that the ingest decide one order again, from what TikTok says about it now.

`shopsync sync` (the seller's "update store orders") and the ingest's scheduled reconciliation find orders with
Search Orders and ask the ingest to decide each; neither writes an order topic. A check travels on
`tiktok.webhooks`, keyed `{shop_id}:{order_id}` like the order's own webhooks, so it reaches the ingest instance
that owns the order's partition (and its state) and is decided in order with them, through the same path: ordering
by `update_time`, Get Order Detail, the decision, the outputs. It is a CloudEvent of type
`shopsync.order.check_requested` whose data is not a TikTok webhook; every consumer of the topic tells the two apart
by `ce_type`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from shared.envelope import CloudEvent, Headers, rfc3339, to_headers
from shared.orders import order_key
from shared.producer import Sender
from shared.settings import Settings
from shared.tiktok.fields import parse_exactly
from shared.tiktok.webhooks import MAX_SAFE_INTEGER
from shared.topics import TIKTOK_WEBHOOKS, topic_name

CE_TYPE_CHECK = "shopsync.order.check_requested"


@dataclass(frozen=True, slots=True)
class OrderCheck:
    """Decide `order_id` of `shop_id` again; `update_time` is the order's as the requester found it (None: unknown)."""

    shop_id: str
    order_id: str
    update_time: int | None
    requested_by: str  # "cli", "reconcile", ...
    requested_at: int  # Unix seconds

    @property
    def key(self) -> str:
        return order_key(self.shop_id, self.order_id)

    def to_dict(self) -> dict[str, Any]:
        return {"shop_id": self.shop_id, "order_id": self.order_id, "update_time": self.update_time,
                "requested_by": self.requested_by, "requested_at": self.requested_at}


def is_check(headers: Headers | None) -> bool:
    """True for a record of `tiktok.webhooks` that is an order check, not a TikTok webhook."""
    return any(name == "ce_type" and value == CE_TYPE_CHECK.encode() for name, value in headers or ())


def parse_check(raw: bytes | Mapping[str, Any]) -> OrderCheck:
    """The check in `raw`; raises MalformedPayload naming the field."""
    return parse_exactly(raw, lambda doc: OrderCheck(
        doc.string_id("shop_id"), doc.string_id("order_id"), doc.optional_time("update_time"),
        doc.optional_text("requested_by") or "", doc.integer("requested_at", MAX_SAFE_INTEGER)))


def check_headers(check: OrderCheck, traceparent: str | None) -> list[tuple[str, bytes]]:
    event = CloudEvent(id=f"check:{uuid.uuid4().hex}", source=f"shopsync/{check.requested_by or 'unknown'}",
                       type=CE_TYPE_CHECK, data=b"", time=rfc3339(check.requested_at), subject=check.key)
    return to_headers(event, [("traceparent", traceparent)] if traceparent else [])


async def request_check(producer: Sender, settings: Settings, check: OrderCheck, traceparent: str | None) -> None:
    """Put `check` on `tiktok.webhooks` (acknowledged before this returns)."""
    await producer.send_and_wait(topic_name(TIKTOK_WEBHOOKS, settings.shopsync_topic_prefix),
                                 orjson.dumps(check.to_dict()), key=check.key.encode(),
                                 headers=check_headers(check, traceparent))


def new_check(shop_id: str, order_id: str, update_time: int | None, requested_by: str) -> OrderCheck:
    return OrderCheck(shop_id, order_id, update_time, requested_by, int(time.time()))


"""Signed webhook pushes with TikTok's retry schedule (2 min, 30 min, 3 h, 12 h), scaled by the time factor."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from services.tiktok_sandbox.config import SandboxConfig
from shared.tiktok.signing import webhook_signature

RETRY_SCHEDULE_S = (120.0, 1800.0, 10800.0, 43200.0)
PUSH_TIMEOUT_S = 3.0


@dataclass(slots=True)
class Push:
    """One notification and what became of it."""

    notification_id: str
    shop_id: str
    type: int
    body: bytes
    order_id: str | None = None
    status: str | None = None
    answers: list[int] = field(default_factory=list)  # HTTP status per attempt (0 = no answer)
    delivered: bool = False
    dropped: bool = False
    gave_up: bool = False
    pushed_at: float = field(default_factory=time.time)

    def summary(self) -> dict[str, Any]:
        return {"notification_id": self.notification_id, "shop_id": self.shop_id, "type": self.type,
                "order_id": self.order_id, "status": self.status, "answers": self.answers,
                "attempts": len(self.answers), "retries": max(0, len(self.answers) - 1),
                "delivered": self.delivered, "dropped": self.dropped, "gave_up": self.gave_up,
                "pushed_at": self.pushed_at}


class WebhookPusher:
    """Sends pushes in the background; each failed one is retried on the (scaled) schedule."""

    def __init__(self, config: SandboxConfig, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.log: list[Push] = []
        self.drop = False
        self._http = http or httpx.AsyncClient(timeout=PUSH_TIMEOUT_S)
        self._tasks: set[asyncio.Task[None]] = set()

    def push(self, event_type: int, shop_id: str, data: dict[str, Any], *, with_id: bool = True) -> Push:
        """Queue a webhook; returns its log entry (delivery happens in the background)."""
        doc: dict[str, Any] = {"type": event_type, "shop_id": shop_id, "timestamp": int(time.time()), "data": data}
        if with_id:
            doc["tts_notification_id"] = str(7327112393057371910 + random.randrange(10**15))
        body = orjson.dumps(doc)
        entry = Push(doc.get("tts_notification_id") or secrets.token_hex(8), shop_id, event_type, body,
                     data.get("order_id"), data.get("order_status"))
        self.log.append(entry)
        if self.drop or not self.config.webhook_url:
            entry.dropped = True
            return entry
        copies = 2 if self.config.duplicate_webhooks else 1
        for _ in range(copies):
            delay = random.uniform(0, 0.2) if self.config.reorder_webhooks else 0.0
            task = asyncio.get_running_loop().create_task(self._deliver(entry, delay))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return entry

    async def _deliver(self, entry: Push, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        schedule = [0.0, *(s / self.config.time_factor for s in RETRY_SCHEDULE_S)]
        for wait in schedule:
            if wait:
                await asyncio.sleep(wait)
            status = await self._attempt(entry.body)
            entry.answers.append(status)
            if status == 200:
                entry.delivered = True
                return
        entry.gave_up = True

    async def _attempt(self, body: bytes) -> int:
        url = self.config.webhook_url
        if not url:
            return 0
        headers = {"Authorization": webhook_signature(self.config.app_key, self.config.app_secret, body),
                   "Content-Type": "application/json"}
        try:
            response = await self._http.post(url, content=body, headers=headers)
            return response.status_code
        except httpx.HTTPError:
            return 0

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.aclose()

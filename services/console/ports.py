"""What the console needs of the rest of shopsync, as ports: the CLI wires the real ones (the owners' commands and
APIs, the operator tools), tests can hand in fakes. The console itself writes no topic."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from shared.stores.model import StoreRecord


class ChangeRefused(Exception):
    """An owner refused a change; the message is for the person at the page."""


@dataclass(frozen=True, slots=True)
class StorePatch:
    """A change to a store's settings (None = leave as is)."""

    auto_sync_orders: bool | None = None
    auto_sync_shipments: bool | None = None
    auto_sync_inventory: bool | None = None
    inventory_buffer: int | None = None


@dataclass(frozen=True, slots=True)
class PendingLink:
    state: str
    authorization_url: str
    nickname: str
    warehouse: str
    region: str
    begun_at: float


@dataclass(slots=True)
class OrderUpdate:
    """An "Update store orders" run, as it goes: orders found so far, and how it ended."""

    job_id: str
    nickname: str
    found: int = 0
    done: bool = False
    problem: str = ""


LinkStatus = Literal["waiting", "linked", "warehouse_not_found", "failed", "choice_needed"]


@dataclass(frozen=True, slots=True)
class LinkOutcome:
    """How a link the console began ended (or that it has not yet)."""

    link: PendingLink
    status: LinkStatus
    message: str = ""
    typed: str = ""
    warehouses: list[str] = field(default_factory=list)  # warehouse_not_found: the shop's sales warehouses


class Stores(Protocol):
    """The stores owner, through its table and its commands."""

    def list(self) -> list[StoreRecord]: ...

    async def change(self, shop_id: str, patch: StorePatch) -> str: ...

    async def begin_link(self, nickname: str, warehouse: str, region: str) -> PendingLink: ...

    def link_outcome(self, state: str) -> LinkOutcome | None: ...

    def start_update(self, shop_id: str, since_s: float) -> OrderUpdate: ...

    def update(self, job_id: str) -> OrderUpdate | None: ...


@dataclass(frozen=True, slots=True)
class Explained:
    order_id: str
    timeline: list[dict[str, Any]]
    verdict: str


@dataclass(frozen=True, slots=True)
class SkipGroup:
    reason: str
    count: int
    fix: str
    order_ids: list[str]


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    at: str
    reason: str
    source_topic: str
    key: str
    redriven: bool


@dataclass(frozen=True, slots=True)
class ReplayCount:
    selected: int
    changed: int
    replayed: int
    dry_run: bool


@dataclass(frozen=True, slots=True)
class LagRow:
    group: str
    lag: int


@dataclass(frozen=True, slots=True)
class Health:
    name: str
    url: str
    ok: bool


class Operator(Protocol):
    """The operator tools (`explain`, `dlq`, `replay`, lag, health) and the audit service."""

    async def explain(self, order_id: str) -> Explained: ...

    async def skipped_since(self, since_s: float) -> list[SkipGroup]: ...

    async def dead_letters(self) -> list[DeadLetterRow]: ...

    async def redrive(self, reason: str, dry_run: bool) -> int: ...

    async def replay(self, shop_id: str | None, from_s: float | None, only_incomplete: bool,
                     dry_run: bool) -> ReplayCount: ...

    async def lag(self) -> list[LagRow]: ...

    async def health(self) -> list[Health]: ...

    async def sync_results(self) -> list[dict[str, Any]]: ...

    async def inventory_status(self, product_code: str) -> dict[str, Any]: ...

"""The store record on `shopsync.stores` (key = shop id; a pending link is keyed by its `state`).

The stores owner (`services/stores`) is the one writer of the topic: it gives every record it writes the next
`revision` of its key, and refuses a command based on any other revision than the current one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

Status = Literal["pending_authorization", "linked", "deauthorized", "authorization_expiring", "needs_relink"]
PENDING: Status = "pending_authorization"
LINKED: Status = "linked"
DEAUTHORIZED: Status = "deauthorized"
EXPIRING: Status = "authorization_expiring"
NEEDS_RELINK: Status = "needs_relink"  # its tokens cannot be used (see `status_reason`): link it again
STATE_TTL_S = 30 * 60
PENDING_KEY_PREFIX = "pending:"


@dataclass(slots=True)
class StoreRecord:
    """A store connection. Tokens are Fernet ciphertexts; never log or print them."""

    nickname: str
    status: Status
    status_reason: str = ""  # why the store is in its status, for the operator (set with needs_relink)
    warehouse_name: str = ""  # as the seller typed it; blank = all warehouses
    warehouse_ids: list[str] = field(default_factory=list)
    warehouse_names: list[str] = field(default_factory=list)
    auto_sync_orders: bool = True
    auto_sync_shipments: bool = True
    auto_sync_inventory: bool = True
    inventory_buffer: int = 0
    shop_id: str = ""
    shop_name: str = ""
    region: str = ""
    shop_cipher: str = ""
    state: str = ""
    state_expires_at: int = 0
    access_token_enc: str = ""
    refresh_token_enc: str = ""
    access_token_expires_at: int = 0
    refresh_token_expires_at: int = 0
    authorization_expires_at: int = 0
    authorized_at: int = 0  # when the seller last granted the authorization (our clock, Unix seconds)
    created_at: int = 0
    updated_at: int = 0
    revision: int = 0  # +1 on every write by the stores owner; records written before it existed read as 0

    @property
    def key(self) -> str:
        return self.shop_id if self.status != PENDING else f"{PENDING_KEY_PREFIX}{self.state}"

    @property
    def is_active(self) -> bool:
        """Linked (possibly with an authorization about to expire): API calls allowed."""
        return self.status in (LINKED, EXPIRING)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StoreRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def public(self) -> dict[str, Any]:
        """What `stores list` shows: everything but the tokens and the OAuth state."""
        hidden = {"access_token_enc", "refresh_token_enc", "state"}
        return {k: v for k, v in self.to_dict().items() if k not in hidden}

    def __repr__(self) -> str:
        return f"StoreRecord(shop_id={self.shop_id!r}, nickname={self.nickname!r}, status={self.status!r})"

"""The owner's decisions, as plain functions over records and commands (no Kafka, no HTTP)."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

from shared.stores.commands import (
    IGNORED,
    REFUSED,
    STALE_REVISION,
    UNCHANGED,
    AuthorizationEvent,
    CommandResult,
    ResultStatus,
    SetStore,
    StoreCommand,
)
from shared.stores.crypto import KEY_MISMATCH, TokenCipher
from shared.stores.model import DEAUTHORIZED, EXPIRING, NEEDS_RELINK, PENDING, StoreRecord
from shared.tiktok import event_types
from shared.tiktok.models import TokenGrant, Warehouse


def answer(command: StoreCommand, status: ResultStatus, reason: str = "", message: str = "",
           record: StoreRecord | None = None, **extra: Any) -> CommandResult:
    """The result of `command`; with the record it left (its revision and, for a shop, its public view)."""
    return CommandResult(command_id=command.reply_to, kind=command.kind, key=command.key, status=status,
                         reason=reason, message=message, revision=record.revision if record else None,
                         store=record.public() if record is not None and record.status != PENDING else None, **extra)


def refusal(command: StoreCommand, record: StoreRecord | None) -> CommandResult | None:
    """Why `command` must not be applied to `record` at all (unknown record, stale `based_on`), or None."""
    if record is None:
        return answer(command, REFUSED, "unknown_store", f"no store {command.key}")
    if command.based_on is not None and command.based_on != record.revision:
        return answer(command, REFUSED, STALE_REVISION, f"store {command.key} is at revision {record.revision}, "
                      f"not {command.based_on}: read it again", record)
    return None


def invalid_patch(command: SetStore) -> str | None:
    """What is wrong with a patch before anything is looked up, or None."""
    if command.inventory_buffer is not None and command.inventory_buffer < 0:
        return "--inventory-buffer must be 0 or more"
    if command.nickname is not None and not command.nickname.strip():
        return "--nickname must not be empty"
    return None


def patched(store: StoreRecord, command: SetStore, warehouses: list[Warehouse] | None) -> StoreRecord:
    """`store` with the patch's fields; `warehouses` are the resolved matches when the patch names a warehouse."""
    changes: dict[str, Any] = {name: value for name in ("auto_sync_orders", "auto_sync_shipments",
                                                        "auto_sync_inventory", "inventory_buffer")
                               if (value := getattr(command, name)) is not None}
    if command.nickname is not None:
        changes["nickname"] = command.nickname.strip()
    if command.warehouse is not None and warehouses is not None:
        changes.update(warehouse_name=" ".join(command.warehouse.split()), warehouse_ids=[w.id for w in warehouses],
                       warehouse_names=[w.name for w in warehouses])
    return replace(store, **changes)


def unlinked(store: StoreRecord, now: float) -> StoreRecord:
    """Unlinked by the operator: deauthorized, tokens erased."""
    return replace(store, status=DEAUTHORIZED, status_reason="", access_token_enc="", refresh_token_enc="",
                   access_token_expires_at=int(now))


def marked_needs_relink(store: StoreRecord) -> StoreRecord:
    return replace(store, status=NEEDS_RELINK, status_reason=KEY_MISMATCH)


def refreshed(store: StoreRecord, grant: TokenGrant, cipher: TokenCipher) -> StoreRecord:
    """`store` with the new tokens (encrypted with the first key)."""
    return replace(store, access_token_enc=cipher.encrypt(grant.access_token),
                   refresh_token_enc=cipher.encrypt(grant.refresh_token),
                   access_token_expires_at=grant.access_token_expire_in,
                   refresh_token_expires_at=grant.refresh_token_expire_in)


def same_content(a: StoreRecord, b: StoreRecord) -> bool:
    """Equal but for the bookkeeping the writer sets (revision, updated_at)."""
    return replace(a, revision=0, updated_at=0) == replace(b, revision=0, updated_at=0)


def authorization_applied(store: StoreRecord, event: AuthorizationEvent) -> StoreRecord | CommandResult:
    """What a type 6/7 webhook does to `store`: the record to write, or the answer when nothing is to be written.

    An event pushed before the seller's latest authorization (`authorized_at`) is about an authorization since
    replaced: stale, ignored. A deauthorization marks the store `deauthorized`; an expiry warning records the date
    and marks it `authorization_expiring`, unless it is deauthorized or needs relinking (the date is news, the
    status stays until the seller acts).
    """
    if event.pushed_at is not None and event.pushed_at < store.authorized_at:
        return answer(event, IGNORED, "stale_event", f"pushed at {event.pushed_at}, before the store's last "
                      f"authorization at {store.authorized_at}", store)
    if event.event_type == event_types.SELLER_DEAUTHORIZATION:
        changed = replace(store, status=DEAUTHORIZED, status_reason="")
    elif event.event_type == event_types.UPCOMING_AUTHORIZATION_EXPIRATION:
        changed = replace(store)
        with contextlib.suppress(TypeError, ValueError):
            changed.authorization_expires_at = int(str(event.expiration_time))
        if store.status not in (DEAUTHORIZED, NEEDS_RELINK):
            changed.status = EXPIRING
    else:
        return answer(event, IGNORED, "not_an_authorization_event", f"webhook type {event.event_type}", store)
    return answer(event, UNCHANGED, record=store) if same_content(changed, store) else changed

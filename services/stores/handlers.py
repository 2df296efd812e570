"""One handler per command kind: check the command against the view, call TikTok when it must, write, answer.

Every handler runs in its record's partition lane, one command at a time, so it decides against a view that holds
every earlier write to the record (`OwnerView`). A command based on another revision than the current one is
refused and changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.stores.context import OwnerContext
from services.stores.decide import (
    answer,
    authorization_applied,
    invalid_patch,
    marked_needs_relink,
    patched,
    refreshed,
    refusal,
    same_content,
    unlinked,
)
from services.stores.linking import attach_link, begin_link, link
from shared.logging import get_logger
from shared.stores.commands import (
    APPLIED,
    FAILED,
    IGNORED,
    REFUSED,
    UNCHANGED,
    AuthorizationEvent,
    CommandResult,
    MarkNeedsRelink,
    RefreshTokens,
    RotateKey,
    SetStore,
    StoreCommand,
    Unlink,
)
from shared.stores.crypto import KEY_MISMATCH, KeyMismatch
from shared.stores.model import StoreRecord
from shared.stores.tokens import reencrypt
from shared.stores.warehouses import WarehouseNotFound, resolve_warehouses
from shared.tiktok.errors import RateLimited, TikTokError, Transient
from shared.tiktok.models import ShopAuth, Warehouse

log = get_logger("stores.handlers")


async def refresh_tokens(ctx: OwnerContext, command: RefreshTokens) -> CommandResult:
    """Refresh at TikTok, only if the tokens are still those of `based_on`: a second request for the same revision
    is refused as stale, so concurrent requesters cause one refresh."""
    store = ctx.view.stores.get(command.shop_id)
    if (refused := refusal(command, store)) is not None:
        return refused
    assert store is not None
    if not store.is_active:
        return answer(command, REFUSED, "not_linked", f"store {store.shop_id} is {store.status}", store)
    try:
        refresh_token = ctx.cipher.decrypt(store.refresh_token_enc)
    except KeyMismatch:
        return await _mark_needs_relink(ctx, command, store)
    try:
        grant = await ctx.tiktok.refresh_token(refresh_token)
    except TikTokError as exc:  # after the client's own retries; "unavailable" tells requesters to retry later
        unavailable = isinstance(exc, RateLimited | Transient)
        log.error("store_token_refresh_failed", shop_id=store.shop_id, code=exc.code, request_id=exc.request_id,
                  unavailable=unavailable)
        return answer(command, FAILED, "tiktok_unavailable" if unavailable else "tiktok_error",
                      f"TikTok {'was unavailable for' if unavailable else 'refused'} the token refresh: {exc.message}",
                      store, tiktok_code=exc.code, request_id=exc.request_id)
    written = await ctx.writer.put(refreshed(store, grant, ctx.cipher), command)
    log.info("store_token_refreshed", shop_id=store.shop_id, expires_at=grant.access_token_expire_in,
             revision=written.revision)
    return answer(command, APPLIED, record=written)


async def mark_needs_relink(ctx: OwnerContext, command: MarkNeedsRelink) -> CommandResult:
    """A requester could not decrypt the store's tokens; marked only if the owner's keys cannot either."""
    store = ctx.view.stores.get(command.shop_id)
    if (refused := refusal(command, store)) is not None:
        return refused
    assert store is not None
    if not store.is_active:
        return answer(command, UNCHANGED, message=f"store {store.shop_id} is {store.status}", record=store)
    try:
        for blob in (store.access_token_enc, store.refresh_token_enc):
            if blob:
                ctx.cipher.decrypt(blob)
    except KeyMismatch:
        return await _mark_needs_relink(ctx, command, store)
    return answer(command, UNCHANGED, "tokens_decrypt", "the stores owner's SHOPSYNC_SECRET_KEY decrypts these "
                  "tokens: the requester's key list is out of date", store)


async def _mark_needs_relink(ctx: OwnerContext, command: StoreCommand, store: StoreRecord) -> CommandResult:
    written = await ctx.writer.put(marked_needs_relink(store), command)
    log.error("store_needs_relink", shop_id=store.shop_id, nickname=store.nickname, reason=KEY_MISMATCH)
    return answer(command, FAILED, "key_mismatch", str(KeyMismatch()), written)


async def set_store(ctx: OwnerContext, command: SetStore) -> CommandResult:
    store = ctx.view.stores.get(command.shop_id)
    if (refused := refusal(command, store)) is not None:
        return refused
    assert store is not None
    if (problem := invalid_patch(command)) is not None:
        return answer(command, FAILED, "invalid", problem, store)
    warehouses: list[Warehouse] | None = None
    if command.warehouse is not None:
        found = await _warehouses(ctx, command, store)
        if isinstance(found, CommandResult):
            return found
        warehouses = found
    changed = patched(store, command, warehouses)
    if same_content(changed, store):
        return answer(command, UNCHANGED, record=store)
    written = await ctx.writer.put(changed, command)
    log.info("store_updated", shop_id=store.shop_id, revision=written.revision)
    return answer(command, APPLIED, record=written)


async def _warehouses(ctx: OwnerContext, command: SetStore, store: StoreRecord) -> list[Warehouse] | CommandResult:
    """The sales warehouses the patch's name resolves to at TikTok ('' = all: no call), or the failure."""
    assert command.warehouse is not None
    if not command.warehouse.strip():
        return []
    named = f"{store.nickname} ({store.shop_id})"
    try:
        auth = ShopAuth(store.shop_id, store.shop_cipher, ctx.cipher.decrypt(store.access_token_enc))
        return resolve_warehouses(command.warehouse, await ctx.tiktok.get_warehouses(auth))
    except KeyMismatch as exc:
        return answer(command, FAILED, "key_mismatch", f"{named}: {exc}", store)
    except WarehouseNotFound as exc:
        return answer(command, FAILED, "warehouse_not_found", str(exc), store)
    except TikTokError as exc:
        return answer(command, FAILED, "tiktok_error", f"TikTok refused the warehouse list (code {exc.code}, "
                      f"request id {exc.request_id})", store, tiktok_code=exc.code, request_id=exc.request_id)


async def unlink(ctx: OwnerContext, command: Unlink) -> CommandResult:
    store = ctx.view.stores.get(command.shop_id)
    if (refused := refusal(command, store)) is not None:
        return refused
    assert store is not None
    written = await ctx.writer.put(unlinked(store, ctx.clock()), command)
    log.warning("store_unlinked", shop_id=store.shop_id, nickname=store.nickname, revision=written.revision)
    return answer(command, APPLIED, record=written)


async def rotate_key(ctx: OwnerContext, command: RotateKey) -> CommandResult:
    """Re-encrypt with the first key; reason `restored` when a store marked for its key is linked again."""
    record = ctx.view.record(command.record_key)
    if (refused := refusal(command, record)) is not None:
        return refused
    assert record is not None
    try:
        rotated = reencrypt(record, ctx.cipher)
    except KeyMismatch as exc:
        return answer(command, FAILED, "key_mismatch", str(exc), record)
    if rotated is None:
        no_tokens = not (record.access_token_enc or record.refresh_token_enc)
        return answer(command, UNCHANGED, "no_tokens" if no_tokens else "already_current", record=record)
    written = await ctx.writer.put(rotated, command)
    return answer(command, APPLIED, "restored" if rotated.status != record.status else "reencrypted", record=written)


async def authorization_event(ctx: OwnerContext, command: AuthorizationEvent) -> CommandResult:
    store = ctx.view.stores.get(command.shop_id)
    if store is None:
        log.warning("store_event_for_unknown_shop", shop_id=command.shop_id, type=command.event_type)
        return answer(command, IGNORED, "unknown_store", f"no store {command.shop_id}")
    decided = authorization_applied(store, command)
    if isinstance(decided, CommandResult):
        if decided.reason == "stale_event":
            ctx.metrics.stale.labels(type=str(command.event_type)).inc()
            log.info("webhook_stale", shop_id=store.shop_id, type=command.event_type, timestamp=command.pushed_at,
                     authorized_at=store.authorized_at, notification_id=command.notification_id)
        return decided
    written = await ctx.writer.put(decided, command)
    log.warning("store_authorization_event", shop_id=store.shop_id, nickname=store.nickname, status=written.status,
                expires_at=written.authorization_expires_at, notification_id=command.notification_id)
    return answer(command, APPLIED, record=written)


Handler = Callable[[OwnerContext, Any], Awaitable[CommandResult | None]]
HANDLERS: dict[str, Handler] = {
    "begin_link": begin_link, "link": link, "attach_link": attach_link, "refresh_tokens": refresh_tokens,
    "mark_needs_relink": mark_needs_relink, "set": set_store, "unlink": unlink, "rotate_key": rotate_key,
    "authorization_event": authorization_event,
}


async def apply_command(ctx: OwnerContext, command: StoreCommand) -> CommandResult | None:
    """The answer to `command` (None when another instance gives it: a forwarded link)."""
    return await HANDLERS[command.kind](ctx, command)

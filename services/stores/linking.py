"""Linking, on the owner's side: store a pending link, complete it with TikTok's code, attach the linked shop.

A `link` is keyed by its pending link (`pending:{state}`), whose partition's owner completes it in steps that each
leave the pending record saying how far it got, so a `link` redelivered after a stop carries on where it stopped
and its requester gets one answer whatever the stop:

1. the pending record is marked `link_completing` (its `status_reason`): the link is used up, a second `link` of
   the state is refused. Redelivered here (stopped during the exchange), a code link fails `link_interrupted`: the
   code is single use. A shop choice is completed again (its tokens are still in the record).
2. the code is exchanged and the warehouse resolved; the linked store (tokens encrypted) is kept in the pending
   record, marked `link_completed`. The shop id is known only now, and may belong to another owner instance's
   partition: the store goes there as an `attach_link` (command id `{link id}:attach`), and that instance, the
   shop's one writer, stores it and answers the `link`. Redelivered here, the same `attach_link` is forwarded
   again (the shop's owner drops a second one: its `link` is answered).
3. the pending record is tombstoned. Redelivered here, there is nothing left to do.

A `link` answered here (a failure, a shop choice) has its pending record tombstoned once the answer is out
(`use_up`), also when it is redelivered between the two.
"""

from __future__ import annotations

from dataclasses import replace

from services.stores.context import OwnerContext
from services.stores.decide import answer
from shared.logging import get_logger
from shared.stores.commands import (
    APPLIED,
    CHOICE_NEEDED,
    FAILED,
    AttachLink,
    BeginLink,
    CommandResult,
    Link,
)
from shared.stores.crypto import MissingSecretKey
from shared.stores.linking import LinkError, ShopChoiceNeeded, complete_choice, complete_link
from shared.stores.model import LINKED, PENDING, StoreRecord
from shared.stores.warehouses import WarehouseNotFound
from shared.tiktok.errors import TikTokError

log = get_logger("stores.linking")
UNKNOWN_LINK = "This authorization link is unknown or was already used. Run `shopsync stores link` again."
USED_LINK = "This authorization link was already used. Run `shopsync stores link` again."
EXPIRED_LINK = "This authorization link has expired (30 minutes). Run `shopsync stores link` again."
INTERRUPTED_LINK = ("The link was interrupted (the stores service stopped while completing it). "
                    "Run `shopsync stores link` again.")
COMPLETING = "link_completing"  # a pending link's `status_reason` once a `link` uses it
COMPLETED = "link_completed"  # ... once it holds the linked store, until the `attach_link` is forwarded


async def begin_link(ctx: OwnerContext, command: BeginLink) -> CommandResult:
    record = command.record
    if record.status != PENDING or not record.state or record.status_reason in (COMPLETING, COMPLETED):
        return answer(command, FAILED, "invalid", "a pending link needs status pending_authorization and a state")
    written = await ctx.writer.put(record, command)
    log.info("store_link_begun", nickname=record.nickname, expires_at=record.state_expires_at)
    return answer(command, APPLIED, record=written)


async def link(ctx: OwnerContext, command: Link) -> CommandResult | None:
    """Complete a pending link, or carry on with one this command began; None when the linked shop was handed to
    its partition (`attach_link` answers)."""
    pending = ctx.view.pending.get(command.state)
    own = ctx.view.last_command.get(command.key) == command.command_id  # this command wrote the pending key last
    if pending is None:
        return None if own else answer(command, FAILED, "unknown_link", UNKNOWN_LINK)  # own: attach forwarded
    if pending.status_reason in (COMPLETING, COMPLETED) and not own:
        log.warning("store_link_refused", reason="already_used", nickname=pending.nickname)
        return answer(command, FAILED, "unknown_link", USED_LINK)
    if pending.status_reason == COMPLETED:
        log.warning("store_link_resumed", step="attach", shop_id=pending.shop_id, nickname=pending.nickname)
        await _attach(ctx, command, pending)
        return None
    if pending.status_reason == COMPLETING and command.code:
        log.warning("store_link_failed", reason="link_interrupted", nickname=pending.nickname)
        return answer(command, FAILED, "link_interrupted", INTERRUPTED_LINK)
    if pending.status_reason != COMPLETING:  # a fresh pending link: used up from here on
        if pending.state_expires_at < ctx.clock():
            return answer(command, FAILED, "link_expired", EXPIRED_LINK)
        if not command.code and not pending.access_token_enc:
            return answer(command, FAILED, "not_a_choice",
                          "This link is not a shop choice. Run `shopsync stores link` again.")
        await ctx.writer.put(replace(pending, status_reason=COMPLETING), command)
    pending = replace(pending, status_reason="")
    try:
        if command.code:
            store = await complete_link(pending, command.code, ctx.tiktok, ctx.cipher, ctx.clock())
        else:  # a shop choice: its tokens are in the record, so it can be completed again after a stop
            store = await complete_choice(pending, command.chosen_shop_id, ctx.tiktok, ctx.cipher, ctx.clock())
    except ShopChoiceNeeded as exc:
        choice = await ctx.writer.put(exc.pending, command)  # a fresh state: no other command can name it yet
        log.info("store_link_choice", nickname=pending.nickname, shops=[s.id for s in exc.shops])
        return answer(command, CHOICE_NEEDED, message=f"{len(exc.shops)} shops to choose from", record=choice,
                      shops=[{"id": s.id, "name": s.name, "region": s.region, "seller_type": s.seller_type}
                             for s in exc.shops], choice_state=choice.state)
    except WarehouseNotFound as exc:
        log.warning("store_link_failed", reason="warehouse_not_found", nickname=pending.nickname, typed=exc.typed,
                    available=exc.available)
        return answer(command, FAILED, "warehouse_not_found", str(exc), warehouses=exc.available)
    except LinkError as exc:
        return answer(command, FAILED, "link_error", str(exc))
    except MissingSecretKey:  # SHOPSYNC_SECRET_KEY changed while the seller was choosing a shop
        return answer(command, FAILED, "choice_unreadable", "This shop choice can no longer be read (the secret key "
                      "changed). Run `shopsync stores link` again.")
    except TikTokError as exc:
        log.error("store_link_failed", reason="tiktok_error", code=exc.code, request_id=exc.request_id)
        return answer(command, FAILED, "tiktok_error", f"TikTok returned an error (code {exc.code}, request id "
                      f"{exc.request_id}). Try `shopsync stores link` again.", tiktok_code=exc.code,
                      request_id=exc.request_id)
    await _attach(ctx, command, await ctx.writer.put(stashed(store, pending), command))
    return None


async def _attach(ctx: OwnerContext, command: Link, stash: StoreRecord) -> None:
    """Forward the linked store kept in the pending record to its shop's partition, then use the link up."""
    store = unstashed(stash)
    await ctx.forward(AttachLink(command_id=f"{command.command_id}:attach", shop_id=store.shop_id, record=store,
                                 answers=command.command_id, requested_by=command.requested_by))
    await ctx.writer.delete(command.key, command)


async def use_up(ctx: OwnerContext, command: Link) -> None:
    """Once `command` is answered: its pending record tombstoned if anything is left of it (single use)."""
    if command.state in ctx.view.pending:
        await ctx.writer.delete(command.key, command)


async def attach_link(ctx: OwnerContext, command: AttachLink) -> CommandResult:
    """Store the shop a `link` completed (a re-link replaces the record, its revisions go on)."""
    written = await ctx.writer.put(command.record, command)
    log.info("store_linked", shop_id=written.shop_id, nickname=written.nickname, warehouses=written.warehouse_ids)
    return attached(command, written)


def attached(command: AttachLink, store: StoreRecord) -> CommandResult:
    """The answer to a `link`, once its shop is stored (also when its `attach_link` is redelivered after that)."""
    return answer(command, APPLIED, message=linked_message(store), record=store)


def stashed(store: StoreRecord, pending: StoreRecord) -> StoreRecord:
    """The linked `store` as kept under its pending link's key until it is forwarded."""
    return replace(store, status=PENDING, status_reason=COMPLETED, state=pending.state,
                   state_expires_at=pending.state_expires_at)


def unstashed(stash: StoreRecord) -> StoreRecord:
    """The linked store a `stashed` record keeps."""
    return replace(stash, status=LINKED, status_reason="", state="", state_expires_at=0)


def linked_message(store: StoreRecord) -> str:
    warehouses = ", ".join(dict.fromkeys(store.warehouse_names)) or "all warehouses"
    return (f'"{store.nickname}" is linked to TikTok shop "{store.shop_name}" ({store.shop_id}). '
            f"Orders from {warehouses} will be synced.")

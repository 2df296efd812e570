"""Linking, on the owner's side: store a pending link, complete it with TikTok's code, attach the linked shop.

A `link` is keyed by its pending link (`pending:{state}`), whose partition's owner uses the link up (its tombstone,
first: single use whatever happens next), exchanges the code and resolves the warehouse. The shop id is known only
then, and may belong to another owner instance's partition: the linked record goes there as an `attach_link`
command, and that instance, the shop's one writer, stores it and answers the `link`.
"""

from __future__ import annotations

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
from shared.stores.model import PENDING, StoreRecord
from shared.stores.warehouses import WarehouseNotFound
from shared.tiktok.errors import TikTokError

log = get_logger("stores.linking")
UNKNOWN_LINK = "This authorization link is unknown or was already used. Run `shopsync stores link` again."
EXPIRED_LINK = "This authorization link has expired (30 minutes). Run `shopsync stores link` again."


async def begin_link(ctx: OwnerContext, command: BeginLink) -> CommandResult:
    record = command.record
    if record.status != PENDING or not record.state:
        return answer(command, FAILED, "invalid", "a pending link needs status pending_authorization and a state")
    written = await ctx.writer.put(record, command)
    log.info("store_link_begun", nickname=record.nickname, expires_at=record.state_expires_at)
    return answer(command, APPLIED, record=written)


async def link(ctx: OwnerContext, command: Link) -> CommandResult | None:
    """Complete a pending link; None when the linked shop was handed to its partition (`attach_link` answers)."""
    pending = ctx.view.pending.get(command.state)
    if pending is None:
        return answer(command, FAILED, "unknown_link", UNKNOWN_LINK)
    await ctx.writer.delete(command.key, command)
    if pending.state_expires_at < ctx.clock():
        return answer(command, FAILED, "link_expired", EXPIRED_LINK)
    try:
        if command.code:
            store = await complete_link(pending, command.code, ctx.tiktok, ctx.cipher, ctx.clock())
        elif pending.access_token_enc:
            store = await complete_choice(pending, command.chosen_shop_id, ctx.tiktok, ctx.cipher, ctx.clock())
        else:
            return answer(command, FAILED, "not_a_choice",
                          "This link is not a shop choice. Run `shopsync stores link` again.")
    except ShopChoiceNeeded as exc:
        choice = await ctx.writer.put(exc.pending, command)  # a fresh state: no other command can name it yet
        log.info("store_link_choice", nickname=pending.nickname, shops=[s.id for s in exc.shops])
        return answer(command, CHOICE_NEEDED, message=f"{len(exc.shops)} shops to choose from", record=choice,
                      shops=[{"id": s.id, "name": s.name, "region": s.region, "seller_type": s.seller_type}
                             for s in exc.shops], choice_state=choice.state)
    except WarehouseNotFound as exc:
        log.warning("store_link_failed", reason="warehouse_not_found", nickname=pending.nickname, typed=exc.typed,
                    available=exc.available)
        return answer(command, FAILED, "warehouse_not_found", str(exc))
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
    await ctx.forward(AttachLink(command_id=f"{command.command_id}:attach", shop_id=store.shop_id, record=store,
                                 answers=command.command_id, requested_by=command.requested_by))
    return None


async def attach_link(ctx: OwnerContext, command: AttachLink) -> CommandResult:
    """Store the shop a `link` completed (a re-link replaces the record, its revisions go on)."""
    written = await ctx.writer.put(command.record, command)
    log.info("store_linked", shop_id=written.shop_id, nickname=written.nickname, warehouses=written.warehouse_ids)
    return answer(command, APPLIED, message=linked_message(written), record=written)


def linked_message(store: StoreRecord) -> str:
    warehouses = ", ".join(dict.fromkeys(store.warehouse_names)) or "all warehouses"
    return (f'"{store.nickname}" is linked to TikTok shop "{store.shop_name}" ({store.shop_id}). '
            f"Orders from {warehouses} will be synced.")

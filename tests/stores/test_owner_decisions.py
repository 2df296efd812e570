"""The stores owner's decisions as plain functions: revisions, patches, authorization webhooks (no broker)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.stores.decide import authorization_applied, invalid_patch, patched, refusal
from shared.stores.commands import (
    AuthorizationEvent,
    CommandResult,
    SetStore,
    Unlink,
    parse_command,
)
from shared.stores.crypto import TokenCipher, generate_key
from shared.stores.model import DEAUTHORIZED, EXPIRING, LINKED, NEEDS_RELINK, StoreRecord
from shared.tiktok.models import Warehouse
from tests.fakes import linked_store

CIPHER = TokenCipher(generate_key())
AUTHORIZED_AT = 1_800_000_000


def store(**changes: object) -> StoreRecord:
    return linked_store("s1", CIPHER, authorized_at=AUTHORIZED_AT, revision=4, **changes)


@pytest.mark.parametrize(("based_on", "refused"), [(None, False), (4, False), (3, True), (5, True)])
def test_a_command_is_refused_unless_based_on_the_current_revision(based_on: int | None, refused: bool) -> None:
    answer = refusal(Unlink(shop_id="s1", based_on=based_on), store())
    assert (answer is not None) is refused
    if answer is not None:
        assert (answer.status, answer.reason, answer.revision) == ("refused", "stale_revision", 4)


def test_a_command_for_an_unknown_store_is_refused() -> None:
    answer = refusal(Unlink(shop_id="s9"), None)
    assert answer is not None and (answer.status, answer.reason) == ("refused", "unknown_store")


def test_a_patch_changes_only_the_fields_it_names() -> None:
    before = store()
    after = patched(before, SetStore(shop_id="s1", inventory_buffer=3, nickname=" Outlet "), None)
    assert (after.inventory_buffer, after.nickname) == (3, "Outlet")
    assert replace(after, inventory_buffer=before.inventory_buffer, nickname=before.nickname) == before
    warehouses = [Warehouse("w1", "LA Warehouse", "SALES_WAREHOUSE", "ENABLED")]
    moved = patched(before, SetStore(shop_id="s1", warehouse=" la   warehouse"), warehouses)
    assert (moved.warehouse_name, moved.warehouse_ids, moved.warehouse_names) == (
        "la warehouse", ["w1"], ["LA Warehouse"])


@pytest.mark.parametrize(("patch", "problem"), [
    (SetStore(shop_id="s1", inventory_buffer=-1), "--inventory-buffer must be 0 or more"),
    (SetStore(shop_id="s1", nickname="  "), "--nickname must not be empty"),
    (SetStore(shop_id="s1", inventory_buffer=0), None),
])
def test_a_patch_that_cannot_apply_is_refused_before_anything_is_looked_up(patch: SetStore,
                                                                           problem: str | None) -> None:
    assert invalid_patch(patch) == problem


def event(event_type: int, pushed_at: int | None, expiration: int | None = None) -> AuthorizationEvent:
    return AuthorizationEvent(shop_id="s1", event_type=event_type, pushed_at=pushed_at, expiration_time=expiration)


@pytest.mark.parametrize(("status", "event_type", "pushed_at", "outcome", "new_status"), [
    (LINKED, 6, AUTHORIZED_AT + 1, "write", DEAUTHORIZED),
    (LINKED, 6, AUTHORIZED_AT - 1, "stale_event", LINKED),  # a retry about an authorization since replaced
    (LINKED, 6, None, "write", DEAUTHORIZED),
    (DEAUTHORIZED, 6, AUTHORIZED_AT + 1, "unchanged", DEAUTHORIZED),
    (LINKED, 7, AUTHORIZED_AT + 1, "write", EXPIRING),
    (LINKED, 7, AUTHORIZED_AT - 1, "stale_event", LINKED),
    (DEAUTHORIZED, 7, AUTHORIZED_AT + 1, "write", DEAUTHORIZED),  # the date is news, the status stays
    (NEEDS_RELINK, 7, AUTHORIZED_AT + 1, "write", NEEDS_RELINK),
])
def test_what_an_authorization_webhook_does_to_a_store(status: str, event_type: int, pushed_at: int | None,
                                                       outcome: str, new_status: str) -> None:
    before = store(status=status)
    decided = authorization_applied(before, event(event_type, pushed_at, expiration=AUTHORIZED_AT + 86400))
    if outcome == "write":
        assert isinstance(decided, StoreRecord) and decided.status == new_status
        assert decided.authorization_expires_at == (AUTHORIZED_AT + 86400 if event_type == 7 else 0)
    else:
        assert isinstance(decided, CommandResult) and (decided.reason or decided.status) == outcome
        assert before.status == new_status


def test_commands_round_trip_through_their_json() -> None:
    for command in (SetStore(shop_id="s1", based_on=2, auto_sync_orders=False, warehouse=""),
                    event(6, AUTHORIZED_AT), Unlink(shop_id="s1", based_on=0, requested_by="cli")):
        assert parse_command(command.to_json()) == command

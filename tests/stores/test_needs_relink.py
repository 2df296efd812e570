"""Tokens that do not decrypt are one store's problem: the keeper has the stores owner mark it `needs_relink`;
rotation re-encrypts (and un-marks a store whose key is back). Scripted TikTok, the owner in memory, no broker."""

from __future__ import annotations

import pytest

from shared.stores.crypto import KEY_MISMATCH, KeyMismatch, TokenCipher, generate_key
from shared.stores.model import DEAUTHORIZED, EXPIRING, LINKED, NEEDS_RELINK, StoreRecord
from shared.stores.tokens import StoreNeedsRelink, StoreUnavailable, TokenKeeper, reencrypt
from tests.fakes import NOW, FakeTikTok, linked_store
from tests.stores.memory_owner import MemoryOwner

OLD, NEW = generate_key(), generate_key()


def store(shop_id: str, key: str, expires_at: int = NOW + 3 * 86400, **changes: object) -> StoreRecord:
    return linked_store(shop_id, TokenCipher(key), expires_at=expires_at, **changes)


def keeper(keys: str, *stores: StoreRecord) -> tuple[TokenKeeper, FakeTikTok, MemoryOwner]:
    """A keeper and the in-memory stores owner it asks, both with the key list `keys`."""
    tiktok = FakeTikTok()
    owner = MemoryOwner(tiktok, TokenCipher(keys), *stores, clock=lambda: NOW)
    tokens = TokenKeeper(owner.table, owner, tiktok, TokenCipher(keys), clock=lambda: NOW)  # type: ignore[arg-type]
    return tokens, tiktok, owner


@pytest.mark.parametrize("expires_at", [NOW + 3 * 86400, NOW + 60], ids=["token_valid", "refresh_due"])
async def test_a_store_whose_tokens_do_not_decrypt_is_marked_needs_relink_and_the_others_work(expires_at: int) -> None:
    bad = store("bad", OLD, expires_at)
    tokens, tiktok, owner = keeper(NEW, bad, store("good", NEW))
    with pytest.raises(StoreNeedsRelink) as info:
        await tokens.shop_auth("bad")
    assert isinstance(info.value, StoreUnavailable) and "TTP_" not in str(info.value)
    [marked] = owner.writer.written
    assert (marked.shop_id, marked.status, marked.status_reason) == ("bad", NEEDS_RELINK, KEY_MISMATCH)
    assert owner.table.stores["bad"] == marked and not marked.is_active and tiktok.refreshes == []
    assert (marked.access_token_enc, marked.refresh_token_enc) == (bad.access_token_enc, bad.refresh_token_enc)
    assert (await tokens.shop_auth("good")).access_token == "TTP_access_good"
    with pytest.raises(StoreUnavailable):  # no second mark, no API call
        await tokens.shop_auth("bad")
    assert len(owner.writer.written) == 1


async def test_the_expired_token_hook_marks_a_store_whose_refresh_token_does_not_decrypt() -> None:
    tokens, tiktok, owner = keeper(NEW, store("bad", OLD))
    with pytest.raises(StoreNeedsRelink):
        await tokens.on_token_expired("bad")
    assert [s.status for s in owner.writer.written] == [NEEDS_RELINK] and tiktok.refreshes == []


async def test_the_owner_does_not_mark_a_store_its_own_keys_decrypt() -> None:
    good = store("s1", NEW)
    owner = MemoryOwner(FakeTikTok(), TokenCipher(f"{NEW},{OLD}"), good, clock=lambda: NOW)
    outdated = TokenKeeper(owner.table, owner, FakeTikTok(), TokenCipher(OLD),  # type: ignore[arg-type]  # fakes
                           clock=lambda: NOW)
    with pytest.raises(StoreNeedsRelink):  # this process cannot use the store: its key list is out of date
        await outdated.shop_auth("s1")
    assert owner.writer.written == [] and owner.table.stores["s1"].is_active


async def test_during_rotation_stores_under_either_key_get_their_tokens() -> None:
    tokens, _, owner = keeper(f"{NEW},{OLD}", store("old", OLD), store("new", NEW))
    assert (await tokens.shop_auth("old")).access_token == "TTP_access_old"
    assert (await tokens.shop_auth("new")).access_token == "TTP_access_new"
    assert owner.writer.written == []


async def test_a_token_refreshed_during_rotation_is_stored_under_the_first_key() -> None:
    tokens, _, owner = keeper(f"{NEW},{OLD}", store("old", OLD, expires_at=NOW + 60))
    await tokens.shop_auth("old")
    assert TokenCipher(NEW).decrypt(owner.writer.written[-1].refresh_token_enc) == "TTP_refresh_new1"


def test_reencrypt_moves_a_store_to_the_first_key_and_leaves_a_current_one_alone() -> None:
    during = TokenCipher(f"{NEW},{OLD}")
    rotated = reencrypt(store("s1", OLD), during)
    assert rotated is not None and rotated.status == LINKED
    assert TokenCipher(NEW).decrypt(rotated.access_token_enc) == "TTP_access_s1"
    assert TokenCipher(NEW).decrypt(rotated.refresh_token_enc) == "TTP_refresh_s1"
    assert reencrypt(rotated, during) is None
    assert reencrypt(store("s2", OLD, status=DEAUTHORIZED, access_token_enc="", refresh_token_enc=""), during) is None


@pytest.mark.parametrize(("expiring_at", "status"), [(0, LINKED), (NOW + 86400, EXPIRING)])
def test_reencrypt_links_again_a_store_marked_for_its_key_once_the_key_is_back(expiring_at: int, status: str) -> None:
    marked = store("s1", OLD, status=NEEDS_RELINK, status_reason=KEY_MISMATCH, authorization_expires_at=expiring_at)
    rotated = reencrypt(marked, TokenCipher(f"{NEW},{OLD}"))
    assert rotated is not None and (rotated.status, rotated.status_reason) == (status, "")
    assert reencrypt(store("s2", NEW, status=NEEDS_RELINK, status_reason=KEY_MISMATCH), TokenCipher(NEW)) is not None


def test_reencrypt_of_a_store_no_key_decrypts_is_a_key_mismatch() -> None:
    with pytest.raises(KeyMismatch):
        reencrypt(store("s1", generate_key()), TokenCipher(f"{NEW},{OLD}"))

"""The token keeper (asking the stores owner, in memory) and the linking steps, against a scripted TikTok (no
broker, no HTTP)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

from shared.settings import load_settings
from shared.stores.commands import CommandResult, OwnerNotAnswering, RefreshTokens, StoreCommand
from shared.stores.crypto import TokenCipher, generate_key
from shared.stores.linking import (
    LinkError,
    ShopChoiceNeeded,
    choose_shop,
    complete_choice,
    complete_link,
    new_pending_link,
    normalize_region,
)
from shared.stores.model import DEAUTHORIZED, LINKED, PENDING, STATE_TTL_S, StoreRecord
from shared.stores.tokens import (
    REFRESH_AHEAD_S,
    StoreUnavailable,
    TokenKeeper,
    TokenRefreshFailed,
    TokenRefreshPending,
)
from shared.stores.warehouses import WarehouseNotFound
from shared.tiktok.errors import TokenExpired
from shared.tiktok.models import AuthorizedShop, ShopAuth
from tests.fakes import NOW, FakeTikTok, linked_store, store_table
from tests.stores.memory_owner import MemoryOwner

CIPHER = TokenCipher(generate_key())


def store(shop_id: str, expires_at: int, status: str = LINKED) -> StoreRecord:
    return linked_store(shop_id, CIPHER, expires_at=expires_at, status=status)


def keeper(*stores: StoreRecord) -> tuple[TokenKeeper, FakeTikTok, MemoryOwner]:
    """A keeper asking an in-memory stores owner (the real handlers); the owner's view is the keeper's table."""
    tiktok = FakeTikTok()
    owner = MemoryOwner(tiktok, CIPHER, *stores, clock=lambda: NOW)
    tokens = TokenKeeper(owner.table, owner, tiktok, CIPHER, clock=lambda: NOW)  # type: ignore[arg-type]  # fakes
    return tokens, tiktok, owner


async def test_a_token_far_from_expiry_is_used_as_is() -> None:
    tokens, tiktok, owner = keeper(store("s1", NOW + 3 * 86400))
    auth = await tokens.shop_auth("s1")
    assert auth == ShopAuth("s1", "c", "TTP_access_s1") and tiktok.refreshes == [] and owner.requests == []


async def test_a_token_expiring_within_a_day_is_refreshed_by_the_owner_and_stored_encrypted() -> None:
    tokens, tiktok, owner = keeper(store("s1", NOW + REFRESH_AHEAD_S - 60))
    auth = await tokens.shop_auth("s1")
    assert auth.access_token == "TTP_access_new1" and tiktok.refreshes == ["TTP_refresh_s1"]
    [asked] = owner.requests
    assert isinstance(asked, RefreshTokens) and asked.based_on == 0
    [saved] = owner.writer.written
    assert saved.access_token_expires_at == NOW + 7 * 86400 and saved.revision == 1
    assert "TTP_" not in saved.access_token_enc + saved.refresh_token_enc
    assert CIPHER.decrypt(saved.refresh_token_enc) == "TTP_refresh_new1" and owner.table.stores["s1"] == saved


async def test_the_expired_token_hook_refreshes_even_a_token_that_looks_valid() -> None:
    tokens, tiktok, _ = keeper(store("s1", NOW + 3 * 86400))
    assert await tokens.on_token_expired("s1") == "TTP_access_new1"
    assert tiktok.refreshes == ["TTP_refresh_s1"]


async def test_a_second_refresh_based_on_the_same_revision_is_refused_and_refreshes_nothing() -> None:
    tokens, tiktok, owner = keeper(store("s1", NOW + 3 * 86400))
    seen = owner.table.stores["s1"].revision  # what a second keeper read before the first refresh landed
    assert await tokens.on_token_expired("s1") == "TTP_access_new1"
    late = await owner.request(RefreshTokens(shop_id="s1", based_on=seen))
    assert (late.status, late.reason, late.revision) == ("refused", "stale_revision", 1)
    assert tiktok.refreshes == ["TTP_refresh_s1"] and len(owner.writer.written) == 1


@pytest.mark.parametrize("status", [DEAUTHORIZED, PENDING])
async def test_a_store_that_is_not_linked_gets_no_token(status: str) -> None:
    tokens, tiktok, _ = keeper(store("s1", NOW - 10, status=status))
    with pytest.raises(StoreUnavailable):
        await tokens.shop_auth("s1")
    with pytest.raises(StoreUnavailable):
        await tokens.shop_auth("unknown")
    assert tiktok.refreshes == []


async def test_refresh_due_refreshes_expiring_stores_and_one_failure_does_not_stop_the_others() -> None:
    tokens, tiktok, owner = keeper(store("bad", NOW + 60), store("due", NOW + 60), store("fresh", NOW + 5 * 86400))
    tiktok.refresh_fails_for = {"TTP_refresh_bad"}
    await tokens.refresh_due()
    assert sorted(tiktok.refreshes) == ["TTP_refresh_bad", "TTP_refresh_due"]
    assert [s.shop_id for s in owner.writer.written] == ["due"]


async def test_a_due_refresh_tiktok_refuses_falls_back_to_the_valid_token_and_an_expired_one_raises() -> None:
    tokens, tiktok, _ = keeper(store("s1", NOW + 60))
    tiktok.refresh_fails_for = {"TTP_refresh_s1"}
    assert (await tokens.shop_auth("s1")).access_token == "TTP_access_s1"  # due but valid: used meanwhile
    with pytest.raises(TokenRefreshFailed) as info:  # 105002: the token is dead, TikTok's refusal is the answer
        await tokens.on_token_expired("s1")
    assert info.value.code == 105005


class SilentOwner:
    """A stores owner that never answers."""

    default_wait_s = 0.05

    async def request(self, command: StoreCommand, wait: float | None = None) -> CommandResult:
        raise OwnerNotAnswering(command, wait or self.default_wait_s)


async def test_an_owner_that_does_not_answer_is_a_retryable_expired_token_unless_the_token_is_still_valid() -> None:
    table = store_table(store("s1", NOW + 60), store("s2", NOW - 60))
    tokens = TokenKeeper(table, SilentOwner(), FakeTikTok(), CIPHER, clock=lambda: NOW)  # type: ignore[arg-type]
    assert (await tokens.shop_auth("s1")).access_token == "TTP_access_s1"  # due, still valid: used meanwhile
    with pytest.raises(TokenRefreshPending) as info:
        await tokens.shop_auth("s2")
    assert isinstance(info.value, TokenExpired) and "did not answer refresh_tokens" in str(info.value)


# ---- linking ----------------------------------------------------------------------------------------------------
SETTINGS = load_settings(tiktok_service_id="svc-1", tiktok_authorize_url="https://services.example/open/authorize")


def test_a_pending_link_has_a_random_30_minute_state_and_the_authorization_url() -> None:
    record, url = new_pending_link(SETTINGS, "  Main store ", " LA   Warehouse ", now=NOW)
    other, _ = new_pending_link(SETTINGS, "Main store", now=NOW)
    query = parse_qs(urlparse(url).query)
    assert url.startswith("https://services.example/open/authorize?")
    assert query == {"service_id": ["svc-1"], "state": [record.state]} and record.state != other.state
    assert record.status == PENDING and record.state_expires_at == NOW + STATE_TTL_S
    assert (record.nickname, record.warehouse_name) == ("Main store", "LA Warehouse")


def test_a_pending_link_needs_a_nickname() -> None:
    with pytest.raises(LinkError, match="nickname"):
        new_pending_link(SETTINGS, "  ")


async def test_completing_a_link_stores_the_shop_its_warehouses_and_encrypted_tokens() -> None:
    pending, _ = new_pending_link(SETTINGS, "Main store", "la warehouse", now=NOW)
    tiktok = FakeTikTok()
    linked = await complete_link(pending, "code1", tiktok, CIPHER, now=NOW + 60)  # type: ignore[arg-type]
    assert tiktok.warehouse_requests == [ShopAuth("s1", "cipher-1", "TTP_access_code1")]  # asked as the shop
    assert (linked.status, linked.shop_id, linked.shop_name, linked.shop_cipher) == (
        LINKED, "s1", "Sandbox US Store", "cipher-1")
    assert linked.warehouse_ids == ["w1"] and linked.key == "s1"
    assert CIPHER.decrypt(linked.access_token_enc) == "TTP_access_code1" and "TTP_" not in linked.access_token_enc
    assert linked.access_token_expires_at == NOW + 7 * 86400


async def test_an_expired_state_does_not_exchange_the_code() -> None:
    pending, _ = new_pending_link(SETTINGS, "Main store", now=NOW)
    with pytest.raises(LinkError, match="expired"):
        await complete_link(pending, "code1", None, CIPHER, now=NOW + STATE_TTL_S + 1)  # type: ignore[arg-type]


async def test_a_grant_without_a_shop_fails_the_link() -> None:
    pending, _ = new_pending_link(SETTINGS, "Main store", now=NOW)
    with pytest.raises(LinkError, match="no shop"):
        await complete_link(pending, "c", FakeTikTok(shops=[]), CIPHER, now=NOW)  # type: ignore[arg-type]


async def test_an_unknown_warehouse_fails_the_link_listing_the_names() -> None:
    pending, _ = new_pending_link(SETTINGS, "Main store", "Dallas", now=NOW)
    with pytest.raises(WarehouseNotFound, match=r'"Dallas".*"LA Warehouse", "NJ Warehouse"'):
        await complete_link(pending, "c", FakeTikTok(), CIPHER, now=NOW)  # type: ignore[arg-type]


# ---- several shops, regions, the authorization host ---------------------------------------------------------
US = AuthorizedShop("s1", "Sandbox US Store", "US", "LOCAL", "cipher-1", "C1")
GB = AuthorizedShop("s2", "EU Store GB", "GB", "CROSS_BORDER", "cipher-2", "C2")
DE = AuthorizedShop("s3", "EU Store DE", "DE", "CROSS_BORDER", "cipher-3", "C3")


@pytest.mark.parametrize(("shops", "region", "shop_id", "chosen"), [
    ([US], "", "", "s1"),
    ([GB, DE], "", "", None),  # the seller picks
    ([GB, DE], "DE", "", "s3"),
    ([US, GB, DE], "GB", "", "s2"),
    ([GB, DE], "", "s2", "s2"),
    ([US], "US", "", "s1"),
])
def test_which_shop_an_authorization_links(shops: list[AuthorizedShop], region: str, shop_id: str,
                                           chosen: str | None) -> None:
    shop = choose_shop(shops, region=region, shop_id=shop_id)
    assert (shop.id if shop else None) == chosen


@pytest.mark.parametrize(("shops", "region", "shop_id", "message"), [
    ([], "", "", "no shop"),
    ([GB, DE], "FR", "", "no shop in region FR; it covers EU Store GB (GB), EU Store DE (DE)"),
    ([US], "GB", "", "no shop in region GB"),
    ([GB, DE], "", "s9", "Shop s9 is not one of the shops"),
])
def test_a_shop_the_authorization_does_not_cover_fails_naming_what_it_covers(
        shops: list[AuthorizedShop], region: str, shop_id: str, message: str) -> None:
    with pytest.raises(LinkError, match=re.escape(message)):
        choose_shop(shops, region=region, shop_id=shop_id)


@pytest.mark.parametrize(("typed", "region", "host"), [
    ("", "", "https://row.example/open/authorize"),
    ("gb", "GB", "https://row.example/open/authorize"),
    ("UK", "GB", "https://row.example/open/authorize"),
    (" us ", "US", "https://us.example/open/authorize"),
])
def test_the_region_picks_the_authorization_host(typed: str, region: str, host: str) -> None:
    settings = load_settings(tiktok_service_id="svc-1", tiktok_authorize_url="https://row.example/open/authorize",
                             tiktok_authorize_url_us="https://us.example/open/authorize")
    record, url = new_pending_link(settings, "Main", region=typed, now=NOW)
    assert record.region == region and url.startswith(host + "?service_id=svc-1&state=")


@pytest.mark.parametrize("typed", ["Britain", "G", "1A"])
def test_a_region_that_is_not_a_market_code_is_refused(typed: str) -> None:
    with pytest.raises(LinkError, match="two-letter market code"):
        normalize_region(typed)


async def test_several_shops_keep_the_tokens_encrypted_until_the_seller_picks() -> None:
    tiktok = FakeTikTok(shops=[GB, DE])
    pending, _ = new_pending_link(SETTINGS, "Europe", now=NOW)
    with pytest.raises(ShopChoiceNeeded) as info:
        await complete_link(pending, "code1", tiktok, CIPHER, now=NOW + 60)  # type: ignore[arg-type]
    choice = info.value.pending
    assert [s.id for s in info.value.shops] == ["s2", "s3"]
    assert choice.status == PENDING and choice.state not in ("", pending.state) and choice.shop_id == ""
    assert CIPHER.decrypt(choice.access_token_enc) == "TTP_access_code1" and "TTP_" not in choice.access_token_enc
    linked = await complete_choice(choice, "s3", tiktok, CIPHER, now=NOW + 120)  # type: ignore[arg-type]
    assert tiktok.warehouse_requests == [ShopAuth("s3", "cipher-3", "TTP_access_code1")]  # as the chosen shop
    assert (linked.status, linked.shop_id, linked.region, linked.shop_cipher, linked.state) == (
        LINKED, "s3", "DE", "cipher-3", "")
    with pytest.raises(LinkError, match="expired"):
        await complete_choice(choice, "s3", tiktok, CIPHER,  # type: ignore[arg-type]
                              now=NOW + STATE_TTL_S + 600)

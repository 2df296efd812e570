"""The token keeper and the linking steps, against a scripted TikTok (no broker, no HTTP)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlparse

import pytest

from shared.settings import load_settings
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
from shared.stores.table import StoreTable
from shared.stores.tokens import REFRESH_AHEAD_S, StoreUnavailable, TokenKeeper
from shared.stores.warehouses import WarehouseNotFound
from shared.tiktok.errors import PermissionDenied
from shared.tiktok.models import AuthorizedShop, ShopAuth, TokenGrant, Warehouse

NOW = 1_800_000_000


@dataclass
class ScriptedTikTok:
    """Token, shop and warehouse calls answered from fixed data; refreshes counted."""

    shops: list[AuthorizedShop] = field(default_factory=lambda: [
        AuthorizedShop("s1", "Sandbox US Store", "US", "LOCAL", "cipher-1", "C1")])
    warehouses: list[Warehouse] = field(default_factory=lambda: [
        Warehouse("w1", "LA Warehouse", "SALES_WAREHOUSE", "ENABLED"),
        Warehouse("w2", "NJ Warehouse", "SALES_WAREHOUSE", "ENABLED")])
    refreshes: list[str] = field(default_factory=list)
    refresh_fails_for: set[str] = field(default_factory=set)

    async def get_token(self, code: str) -> TokenGrant:
        return TokenGrant(f"TTP_access_{code}", NOW + 7 * 86400, f"TTP_refresh_{code}", NOW + 365 * 86400)

    async def refresh_token(self, refresh_token: str) -> TokenGrant:
        self.refreshes.append(refresh_token)
        if refresh_token in self.refresh_fails_for:
            raise PermissionDenied("refresh token revoked", code=105005)
        n = len(self.refreshes)
        return TokenGrant(f"TTP_access_new{n}", NOW + 7 * 86400, f"TTP_refresh_new{n}", NOW + 365 * 86400)

    async def get_authorized_shops(self, access_token: str) -> list[AuthorizedShop]:
        return self.shops

    async def get_warehouses(self, shop: ShopAuth) -> list[Warehouse]:
        assert shop.access_token.startswith("TTP_access_") and shop.cipher == "cipher-1"
        return self.warehouses


@dataclass
class RecordingWriter:
    written: list[StoreRecord] = field(default_factory=list)

    async def put(self, store: StoreRecord) -> None:
        self.written.append(store)


CIPHER = TokenCipher(generate_key())


def store(shop_id: str, expires_at: int, status: str = LINKED) -> StoreRecord:
    return StoreRecord(nickname=shop_id, status=status, shop_id=shop_id, shop_cipher="c",  # type: ignore[arg-type]
                       access_token_enc=CIPHER.encrypt(f"TTP_access_{shop_id}"),
                       refresh_token_enc=CIPHER.encrypt(f"TTP_refresh_{shop_id}"), access_token_expires_at=expires_at)


def keeper(*stores: StoreRecord) -> tuple[TokenKeeper, ScriptedTikTok, RecordingWriter, StoreTable]:
    table = StoreTable()
    table.stores = {s.shop_id: s for s in stores}
    tiktok, writer = ScriptedTikTok(), RecordingWriter()
    return TokenKeeper(table, writer, tiktok, CIPHER, clock=lambda: NOW), tiktok, writer, table  # type: ignore[arg-type]


async def test_a_token_far_from_expiry_is_used_as_is() -> None:
    tokens, tiktok, writer, _ = keeper(store("s1", NOW + 3 * 86400))
    auth = await tokens.shop_auth("s1")
    assert auth == ShopAuth("s1", "c", "TTP_access_s1") and tiktok.refreshes == [] and writer.written == []


async def test_a_token_expiring_within_a_day_is_refreshed_and_stored_encrypted() -> None:
    tokens, tiktok, writer, table = keeper(store("s1", NOW + REFRESH_AHEAD_S - 60))
    auth = await tokens.shop_auth("s1")
    assert auth.access_token == "TTP_access_new1" and tiktok.refreshes == ["TTP_refresh_s1"]
    saved = writer.written[-1]
    assert saved.access_token_expires_at == NOW + 7 * 86400
    assert "TTP_" not in saved.access_token_enc + saved.refresh_token_enc
    assert CIPHER.decrypt(saved.refresh_token_enc) == "TTP_refresh_new1" and table.stores["s1"] is saved


async def test_the_expired_token_hook_refreshes_even_a_token_that_looks_valid() -> None:
    tokens, tiktok, _, _ = keeper(store("s1", NOW + 3 * 86400))
    assert await tokens.on_token_expired("s1") == "TTP_access_new1"
    assert tiktok.refreshes == ["TTP_refresh_s1"]


@pytest.mark.parametrize("status", [DEAUTHORIZED, PENDING])
async def test_a_store_that_is_not_linked_gets_no_token(status: str) -> None:
    tokens, tiktok, _, _ = keeper(store("s1", NOW - 10, status=status))
    with pytest.raises(StoreUnavailable):
        await tokens.shop_auth("s1")
    with pytest.raises(StoreUnavailable):
        await tokens.shop_auth("unknown")
    assert tiktok.refreshes == []


async def test_refresh_due_refreshes_expiring_stores_and_one_failure_does_not_stop_the_others() -> None:
    tokens, tiktok, writer, _ = keeper(store("bad", NOW + 60), store("due", NOW + 60), store("fresh", NOW + 5 * 86400))
    tiktok.refresh_fails_for = {"TTP_refresh_bad"}
    await tokens.refresh_due()
    assert sorted(tiktok.refreshes) == ["TTP_refresh_bad", "TTP_refresh_due"]
    assert [s.shop_id for s in writer.written] == ["due"]


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
    linked = await complete_link(pending, "code1", ScriptedTikTok(), CIPHER, now=NOW + 60)  # type: ignore[arg-type]
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
        await complete_link(pending, "c", ScriptedTikTok(shops=[]), CIPHER, now=NOW)  # type: ignore[arg-type]


async def test_an_unknown_warehouse_fails_the_link_listing_the_names() -> None:
    pending, _ = new_pending_link(SETTINGS, "Main store", "Dallas", now=NOW)
    with pytest.raises(WarehouseNotFound, match='"Dallas".*"LA Warehouse", "NJ Warehouse"'):
        await complete_link(pending, "c", ScriptedTikTok(), CIPHER, now=NOW)  # type: ignore[arg-type]


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
    tiktok = ScriptedTikTok(shops=[GB, DE])
    pending, _ = new_pending_link(SETTINGS, "Europe", now=NOW)
    with pytest.raises(ShopChoiceNeeded) as info:
        await complete_link(pending, "code1", tiktok, CIPHER, now=NOW + 60)  # type: ignore[arg-type]
    choice = info.value.pending
    assert [s.id for s in info.value.shops] == ["s2", "s3"]
    assert choice.status == PENDING and choice.state not in ("", pending.state) and choice.shop_id == ""
    assert CIPHER.decrypt(choice.access_token_enc) == "TTP_access_code1" and "TTP_" not in choice.access_token_enc
    tiktok.get_warehouses = _warehouses  # type: ignore[method-assign] # any shop's cipher, not only cipher-1
    linked = await complete_choice(choice, "s3", tiktok, CIPHER, now=NOW + 120)  # type: ignore[arg-type]
    assert (linked.status, linked.shop_id, linked.region, linked.shop_cipher, linked.state) == (
        LINKED, "s3", "DE", "cipher-3", "")
    with pytest.raises(LinkError, match="expired"):
        await complete_choice(choice, "s3", tiktok, CIPHER,  # type: ignore[arg-type]
                              now=NOW + STATE_TTL_S + 600)


async def _warehouses(shop: ShopAuth) -> list[Warehouse]:
    return [Warehouse(f"w-{shop.cipher}", "EU Warehouse", "SALES_WAREHOUSE", "ENABLED")]

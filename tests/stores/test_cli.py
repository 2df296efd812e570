"""`shopsync keygen` and `shopsync stores link|list|set|unlink` against the real broker, with a stores owner running
(the CLI asks it for every change)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlparse

import orjson
import pytest
from click.testing import CliRunner, Result

from shared.kafka import create_producer
from shared.settings import Settings
from shared.stores.crypto import TokenCipher, generate_key
from shared.stores.model import DEAUTHORIZED, LINKED, PENDING, StoreRecord
from shared.stores.table import StoreTable, StoreWriter
from shopsync.cli import cli
from tests.stores.owner import running_owner, with_key

KEY = generate_key()


@pytest.fixture
async def owned(settings: Settings) -> AsyncIterator[Settings]:
    """The test's settings, with a stores owner running on them (same SHOPSYNC_SECRET_KEY as the CLI)."""
    s = with_key(settings, KEY)
    async with running_owner(s):
        yield s


async def shopsync(settings: Settings, *args: str, secret_key: str = KEY) -> Result:
    """Run the CLI as a seller would, configured through the environment like any shopsync process."""
    env = {"KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
           "SHOPSYNC_TOPIC_PREFIX": settings.shopsync_topic_prefix,
           "SHOPSYNC_SECRET_KEY": secret_key, "TIKTOK_SERVICE_ID": "svc-1",
           "TIKTOK_AUTHORIZE_URL": "https://services.example/open/authorize",
           "TIKTOK_AUTHORIZE_URL_US": "https://services.us.example/open/authorize"}
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)


async def linked_store(settings: Settings) -> StoreRecord:
    cipher = TokenCipher(KEY)
    record = StoreRecord(nickname="Main store", status=LINKED, shop_id="7001", shop_name="US Shop",
                         warehouse_ids=["w1"], warehouse_names=["LA Warehouse"],
                         access_token_enc=cipher.encrypt("TTP_access"), refresh_token_enc=cipher.encrypt("TTP_refresh"),
                         access_token_expires_at=1_900_000_000)
    producer = create_producer(settings)
    await producer.start()
    await StoreWriter(producer, settings).put(record)
    await producer.stop()
    return record


async def test_keygen_prints_a_key_that_encrypts_tokens() -> None:
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["keygen"])
    assert result.exit_code == 0
    cipher = TokenCipher(result.output.strip())
    assert cipher.decrypt(cipher.encrypt("t")) == "t"


async def test_link_without_a_secret_key_says_how_to_create_one(settings: Settings) -> None:
    result = await shopsync(settings, "stores", "link", "--nickname", "Main store", secret_key="")
    assert result.exit_code != 0
    assert "SHOPSYNC_SECRET_KEY is not set" in result.output and "shopsync keygen" in result.output
    assert (await StoreTable().load(settings)).pending == {}


async def test_link_prints_the_authorization_url_and_stores_a_pending_link(owned: Settings) -> None:
    result = await shopsync(owned, "stores", "link", "--nickname", "Main store", "--warehouse", "LA Warehouse")
    assert result.exit_code == 0, result.output
    url = next(word for word in result.output.split() if word.startswith("https://"))
    assert url.startswith("https://services.example/open/authorize?service_id=svc-1&state=")
    state = parse_qs(urlparse(url).query)["state"][0]
    pending = (await StoreTable().load(owned)).pending[state]
    assert (pending.status, pending.nickname, pending.warehouse_name) == (PENDING, "Main store", "LA Warehouse")


async def test_list_shows_the_store_without_its_tokens(settings: Settings) -> None:
    record = await linked_store(settings)
    as_json = await shopsync(settings, "stores", "list", "--json")
    text = await shopsync(settings, "stores", "list")
    assert as_json.exit_code == 0 and text.exit_code == 0, as_json.output + text.output
    [row] = orjson.loads(as_json.stdout)  # stdout only: a broker warning on stderr is not part of the JSON
    assert (row["nickname"], row["shop_id"], row["status"], row["warehouse_names"], row["auto_sync_orders"]) == (
        "Main store", "7001", "linked", ["LA Warehouse"], True)
    assert row["access_token_expires_at"] == 1_900_000_000
    assert "Main store" in text.output and "LA Warehouse" in text.output and "token expires" in text.output
    for output in (as_json.output, text.output):
        assert record.access_token_enc not in output and "TTP_" not in output and "token_enc" not in output


async def test_set_turns_auto_sync_off_by_nickname(owned: Settings) -> None:
    await linked_store(owned)
    result = await shopsync(owned, "stores", "set", "main store", "--auto-sync-orders", "off")
    assert result.exit_code == 0, result.output
    assert (await StoreTable().load(owned)).stores["7001"].auto_sync_orders is False


async def test_set_and_unlink_of_an_unknown_shop_name_the_linked_stores(owned: Settings) -> None:
    await linked_store(owned)
    for args in (("set", "nope", "--auto-sync-orders", "off"), ("unlink", "nope")):
        result = await shopsync(owned, "stores", *args)
        assert result.exit_code != 0 and "unknown shop 'nope'" in result.output and "Main store (7001)" in result.output


async def test_unlink_marks_the_store_and_erases_its_tokens(owned: Settings) -> None:
    await linked_store(owned)
    result = await shopsync(owned, "stores", "unlink", "7001")
    assert result.exit_code == 0, result.output
    store = (await StoreTable().load(owned)).stores["7001"]
    assert store.status == DEAUTHORIZED and store.access_token_enc == store.refresh_token_enc == ""


async def test_link_with_a_region_uses_that_regions_authorization_host(owned: Settings) -> None:
    us = await shopsync(owned, "stores", "link", "--nickname", "US store", "--region", "us", "--json")
    gb = await shopsync(owned, "stores", "link", "--nickname", "UK store", "--region", "GB", "--json")
    assert us.exit_code == 0 and gb.exit_code == 0, us.output + gb.output
    us_doc = orjson.loads(us.stdout[us.stdout.index("{"):])
    gb_doc = orjson.loads(gb.stdout[gb.stdout.index("{"):])
    assert us_doc["authorization_url"].startswith("https://services.us.example/open/authorize?")
    assert gb_doc["authorization_url"].startswith("https://services.example/open/authorize?")
    assert (us_doc["region"], gb_doc["region"]) == ("US", "GB")
    pending = (await StoreTable().load(owned)).pending.values()
    assert sorted((p.nickname, p.region) for p in pending) == [("UK store", "GB"), ("US store", "US")]
    bad = await shopsync(owned, "stores", "link", "--nickname", "X", "--region", "Britain")
    assert bad.exit_code != 0 and "two-letter market code" in bad.output

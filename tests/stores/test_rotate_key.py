"""`shopsync stores rotate-key` and stores marked `needs_relink`, through the CLI against the real broker. The stores
owner re-encrypts, with its own SHOPSYNC_SECRET_KEY: each step runs an owner with the key list of that step."""

from __future__ import annotations

import asyncio

import orjson
from click.testing import CliRunner, Result

from shared.settings import Settings
from shared.stores.crypto import KEY_MISMATCH, KeyMismatch, TokenCipher, generate_key
from shared.stores.model import DEAUTHORIZED, LINKED, NEEDS_RELINK, StoreRecord
from shared.stores.table import StoreTable
from shopsync.cli import cli
from tests.stores.owner import running_owner, seed, with_key

OLD, NEW, OTHER = generate_key(), generate_key(), generate_key()


async def shopsync(settings: Settings, *args: str, secret_key: str) -> Result:
    env = {"KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
           "SHOPSYNC_TOPIC_PREFIX": settings.shopsync_topic_prefix, "SHOPSYNC_SECRET_KEY": secret_key}
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)


def store(shop_id: str, key: str, **changes: object) -> StoreRecord:
    cipher = TokenCipher(key)
    record = StoreRecord(nickname=f"Store {shop_id}", status=LINKED, shop_id=shop_id,
                         access_token_enc=cipher.encrypt(f"TTP_access_{shop_id}"),
                         refresh_token_enc=cipher.encrypt(f"TTP_refresh_{shop_id}"),
                         access_token_expires_at=1_900_000_000)
    for name, value in changes.items():
        setattr(record, name, value)
    return record


def no_secrets(output: str) -> bool:
    return all(secret not in output for secret in (OLD, NEW, OTHER, "TTP_", "gAAAA"))


async def test_rotation_re_encrypts_every_store_with_the_first_key_and_names_the_one_that_failed(
        settings: Settings) -> None:
    await seed(settings, store("7001", OLD), store("7002", NEW), store("7003", OTHER),
                store("7004", OLD, status=DEAUTHORIZED, access_token_enc="", refresh_token_enc=""))
    async with running_owner(with_key(settings, f"{NEW},{OLD}")):
        result = await shopsync(settings, "stores", "rotate-key", secret_key=f"{NEW},{OLD}")
    assert result.exit_code == 1, result.output
    assert "Re-encrypted 1 store(s) with the first key of SHOPSYNC_SECRET_KEY; 1 already used it." in result.stdout
    assert "Could not decrypt 1 store(s), left unchanged: Store 7003 (7003)" in result.stderr
    assert no_secrets(result.output) and isinstance(result.exception, SystemExit)
    stores = (await StoreTable().load(settings)).stores
    new_only = TokenCipher(NEW)
    for shop_id in ("7001", "7002"):
        assert new_only.decrypt(stores[shop_id].access_token_enc) == f"TTP_access_{shop_id}"
        assert new_only.decrypt(stores[shop_id].refresh_token_enc) == f"TTP_refresh_{shop_id}"
    assert TokenCipher(OTHER).decrypt(stores["7003"].access_token_enc) == "TTP_access_7003"  # left as it was
    async with running_owner(with_key(settings, f"{NEW},{OLD},{OTHER}")):
        again = await shopsync(settings, "stores", "rotate-key", "--json", secret_key=f"{NEW},{OLD},{OTHER}")
    assert again.exit_code == 0, again.output
    doc = orjson.loads(again.stdout)
    assert [s["shop_id"] for s in doc["reencrypted"]] == ["7003"] and doc["failed"] == []
    assert sorted(s["shop_id"] for s in doc["already_current"]) == ["7001", "7002"]
    async with running_owner(with_key(settings, f"{NEW},{OLD}")):
        done = await shopsync(settings, "stores", "rotate-key", secret_key=f"{NEW},{OLD}")
    assert done.exit_code == 0 and "the other keys can be removed from SHOPSYNC_SECRET_KEY" in done.stdout


async def test_a_store_marked_for_its_key_is_listed_with_the_reason_and_linked_again_once_the_key_is_back(
        settings: Settings) -> None:
    await seed(settings, store("7001", OLD, status=NEEDS_RELINK, status_reason=KEY_MISMATCH))
    listed = await shopsync(settings, "stores", "list", secret_key=NEW)
    assert listed.exit_code == 0, listed.output
    assert "needs_relink" in listed.stdout and f"needs relinking: {KEY_MISMATCH}" in listed.stdout
    assert "shopsync stores rotate-key" in listed.stdout
    assert 'shopsync stores link --nickname "Store 7001"' in listed.stdout
    [row] = orjson.loads((await shopsync(settings, "stores", "list", "--json", secret_key=NEW)).stdout)
    assert (row["status"], row["status_reason"]) == (NEEDS_RELINK, KEY_MISMATCH) and no_secrets(listed.output)
    async with running_owner(with_key(settings, f"{NEW},{OLD}")):
        result = await shopsync(settings, "stores", "rotate-key", secret_key=f"{NEW},{OLD}")
    assert result.exit_code == 0, result.output
    assert "Linked again (their tokens decrypt again): Store 7001 (7001)." in result.stdout
    restored = (await StoreTable().load(settings)).stores["7001"]
    assert (restored.status, restored.status_reason, restored.is_active) == (LINKED, "", True)
    assert TokenCipher(NEW).decrypt(restored.access_token_enc) == "TTP_access_7001"


async def test_a_wrong_key_in_the_list_fails_naming_the_setting_without_a_traceback(settings: Settings) -> None:
    await seed(settings, store("7001", OLD))
    for keys, problem in ((f"{NEW},not-a-fernet-key", "SHOPSYNC_SECRET_KEY is not a valid Fernet key (key 2 of 2)"),
                          ("", "SHOPSYNC_SECRET_KEY is not set")):
        result = await shopsync(settings, "stores", "rotate-key", secret_key=keys)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert problem in result.stderr and "Traceback" not in result.output and "not-a-fernet-key" not in result.output
    stored = (await StoreTable().load(settings)).stores["7001"]
    assert TokenCipher(OLD).decrypt(stored.access_token_enc) == "TTP_access_7001"  # nothing written


async def test_changing_the_warehouse_of_a_store_whose_tokens_do_not_decrypt_says_so(settings: Settings) -> None:
    await seed(settings, store("7001", OLD))
    async with running_owner(with_key(settings, NEW)):
        result = await shopsync(settings, "stores", "set", "7001", "--warehouse", "LA Warehouse", secret_key=NEW)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert f"Store 7001 (7001): {KeyMismatch()}" in result.stderr and no_secrets(result.output)


async def test_unlink_clears_the_reason_of_a_store_that_needed_relinking(settings: Settings) -> None:
    await seed(settings, store("7001", OLD, status=NEEDS_RELINK, status_reason=KEY_MISMATCH))
    async with running_owner(with_key(settings, NEW)):
        assert (await shopsync(settings, "stores", "unlink", "7001", secret_key=NEW)).exit_code == 0
    unlinked = (await StoreTable().load(settings)).stores["7001"]
    assert (unlinked.status, unlinked.status_reason) == (DEAUTHORIZED, "")

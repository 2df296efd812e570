"""The store record, its encryption and the table materialized from `shopsync.stores` (pure, no broker)."""

from __future__ import annotations

import orjson
import pytest

from shared.stores.crypto import MissingSecretKey, TokenCipher, generate_key
from shared.stores.model import DEAUTHORIZED, EXPIRING, LINKED, NEEDS_RELINK, PENDING, StoreRecord
from shared.stores.table import StoreTable
from shared.stores.warehouses import WarehouseNotFound, resolve_warehouses
from shared.tiktok.models import Warehouse


def linked(shop_id: str = "s1", nickname: str = "Main store", **changes: object) -> StoreRecord:
    record = StoreRecord(nickname=nickname, status=LINKED, shop_id=shop_id, access_token_enc="gAAA-access",
                         refresh_token_enc="gAAA-refresh")
    for name, value in changes.items():
        setattr(record, name, value)
    return record


def test_tokens_are_encrypted_and_the_key_is_required() -> None:
    cipher = TokenCipher(generate_key())
    blob = cipher.encrypt("TTP_secret")
    assert "TTP_secret" not in blob and cipher.decrypt(blob) == "TTP_secret"
    with pytest.raises(MissingSecretKey, match="shopsync keygen"):
        TokenCipher("")
    with pytest.raises(MissingSecretKey, match="not a valid Fernet key"):
        TokenCipher("not-a-key")
    with pytest.raises(MissingSecretKey, match="do not decrypt with SHOPSYNC_SECRET_KEY"):
        TokenCipher(generate_key()).decrypt(blob)


def test_a_pending_link_is_keyed_by_its_state_and_a_linked_store_by_its_shop_id() -> None:
    assert StoreRecord(nickname="n", status=PENDING, state="abc").key == "pending:abc"
    assert linked("s9").key == "s9"


@pytest.mark.parametrize(("status", "active"), [(LINKED, True), (EXPIRING, True), (DEAUTHORIZED, False),
                                                (PENDING, False), (NEEDS_RELINK, False)])
def test_only_linked_stores_may_call_the_api(status: str, active: bool) -> None:
    assert linked(status=status).is_active is active


def test_public_view_and_repr_never_show_tokens_or_the_state() -> None:
    record = linked(state="secret-state")
    shown = orjson.dumps(record.public()).decode() + repr(record)
    assert "gAAA" not in shown and "secret-state" not in shown and "Main store" in shown


def test_records_round_trip_and_ignore_fields_they_do_not_know() -> None:
    record = linked(warehouse_ids=["w1", "w2"])
    assert StoreRecord.from_dict({**record.to_dict(), "added_later": 1}) == record


def test_table_applies_stores_pending_links_and_tombstones() -> None:
    table = StoreTable()
    table.apply(b"s1", orjson.dumps(linked("s1").to_dict()))
    table.apply(b"pending:abc", orjson.dumps(StoreRecord(nickname="n", status=PENDING, state="abc").to_dict()))
    assert set(table.stores) == {"s1"} and set(table.pending) == {"abc"}
    table.apply(b"pending:abc", None)
    table.apply(b"s1", orjson.dumps(linked("s1", status=DEAUTHORIZED).to_dict()))
    assert table.pending == {} and table.stores["s1"].status == DEAUTHORIZED
    table.apply(b"s1", None)
    assert table.stores == {}


def test_table_skips_unreadable_records_and_keyless_ones() -> None:
    table = StoreTable()
    table.apply(b"s1", b"not json")
    table.apply(b"s2", b'{"no": "nickname"}')
    table.apply(None, orjson.dumps(linked("s3").to_dict()))
    assert table.stores == {}


def test_find_by_shop_id_or_nickname_case_insensitive() -> None:
    table = StoreTable()
    table.stores = {"s1": linked("s1", "Main store"), "s2": linked("s2", "Outlet")}
    assert table.find("s2") is table.stores["s2"]
    assert table.find("main STORE") is table.stores["s1"]
    assert table.find("nope") is None


WAREHOUSES = [Warehouse("1", "LA Warehouse", "SALES_WAREHOUSE", "ENABLED"),
              Warehouse("2", "LA Warehouse", "RETURN_WAREHOUSE", "ENABLED"),
              Warehouse("3", "Shared", "SALES_WAREHOUSE", "ENABLED"),
              Warehouse("4", "Shared", "SALES_WAREHOUSE", "ENABLED"),
              Warehouse("5", "Returns only", "RETURN_WAREHOUSE", "ENABLED")]


def test_warehouse_name_is_trimmed_case_insensitive_and_sales_only() -> None:
    assert [w.id for w in resolve_warehouses("  la   warehouse ", WAREHOUSES)] == ["1"]
    assert resolve_warehouses("", WAREHOUSES) == []


def test_a_name_shared_by_two_sales_warehouses_resolves_to_both() -> None:
    assert [w.id for w in resolve_warehouses("SHARED", WAREHOUSES)] == ["3", "4"]


@pytest.mark.parametrize("typed", ["Dallas", "Returns only"])
def test_unknown_warehouse_names_what_was_typed_and_lists_the_sales_warehouses(typed: str) -> None:
    with pytest.raises(WarehouseNotFound) as info:
        resolve_warehouses(f" {typed} ", WAREHOUSES)
    assert f'"{typed}"' in str(info.value) and '"LA Warehouse", "Shared"' in str(info.value)
    assert info.value.available == ["LA Warehouse", "Shared"]

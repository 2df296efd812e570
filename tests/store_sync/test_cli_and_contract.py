"""`shopsync ship` / `shopsync inventory set|status` as an OMS and an operator use them, and the records of the
four store-sync topics against their schemas (CloudEvents where the contract says so)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import orjson
from click.testing import CliRunner, Result
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event

from shared.kafka import read_to_end
from shared.topics import OMS_INVENTORY, OMS_SHIPMENTS, SYNC_RESULTS, TIKTOK_CATALOG
from shopsync.cli import cli
from tests.store_sync.conftest import LA, US_SHOP, SyncHarness
from tests.waiting import eventually

SCHEMAS = Path(__file__).resolve().parents[2] / "shared" / "schemas"


async def shopsync(sync: SyncHarness, *args: str) -> Result:
    s = sync.settings
    env = {"KAFKA_BOOTSTRAP_SERVERS": s.bootstrap_servers, "SHOPSYNC_TOPIC_PREFIX": s.shopsync_topic_prefix,
           "SHOPSYNC_SECRET_KEY": s.shopsync_secret_key.get_secret_value(), "TIKTOK_APP_KEY": s.tiktok_app_key,
           "TIKTOK_APP_SECRET": s.tiktok_app_secret.get_secret_value(), "TIKTOK_API_BASE": sync.base.sandbox.base_url,
           "TIKTOK_AUTH_BASE": sync.base.sandbox.base_url, "TIKTOK_ALLOW_HTTP": "true"}
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)


async def test_the_cli_ships_and_sets_stock_and_status_shows_every_quantity(sync: SyncHarness) -> None:
    await sync.base.link("Main store", "LA Warehouse", shop_id=US_SHOP)
    await sync.map((US_SHOP, "RED-S", "TEE-RED-S"))
    order = await sync.base.create_order(shop_id=US_SHOP)
    await sync.start()
    shipped = await shopsync(sync, "ship", "--shop", "main store", order["id"], "--carrier", "fedex",
                             "--tracking", "FDX000111", "--json")
    assert shipped.exit_code == 0, shipped.output
    assert orjson.loads(shipped.stdout)["shop_id"] == US_SHOP
    stocked = await shopsync(sync, "inventory", "set", "TEE-RED-S", "33")
    assert stocked.exit_code == 0, stocked.output
    await sync.results(lambda rs: {r["kind"] for r in rs} == {"shipment", "inventory"})
    status = await shopsync(sync, "inventory", "status", "TEE-RED-S", "--json")
    assert status.exit_code == 0, status.output
    report = orjson.loads(status.stdout)
    assert report["oms"]["available"] == 33
    [row] = report["rows"]
    assert (row["store"], row["seller_sku"], row["pushed"], row["tiktok_quantity"], row["last_status"]) == (
        "Main store", "RED-S", 33, 33, "applied")
    text = await shopsync(sync, "inventory", "status", "TEE-RED-S")
    assert "OMS available 33" in text.output and "applied" in text.output


async def test_bad_cli_input_names_the_problem(sync: SyncHarness) -> None:
    unknown = await shopsync(sync, "ship", "--shop", "nope", "1", "--carrier", "usps", "--tracking", "T1")
    assert unknown.exit_code != 0 and "unknown shop 'nope'" in unknown.output
    negative = await shopsync(sync, "inventory", "set", "P", "-1")
    assert negative.exit_code != 0 and "QUANTITY" in negative.output
    empty = await shopsync(sync, "ship", "--shop", US_SHOP, "1", "--carrier", " ", "--tracking", "T1")
    assert empty.exit_code != 0 and "--carrier" in empty.output


async def test_store_sync_topics_match_their_schemas(sync: SyncHarness) -> None:
    await sync.base.link("Main store", "LA Warehouse", shop_id=US_SHOP)
    await sync.map((US_SHOP, "RED-S", "TEE-RED-S"))
    order = await sync.base.create_order(shop_id=US_SHOP)
    await sync.start()
    await sync.ship(US_SHOP, order["id"], "USPS", "TRK30001")
    await sync.ship(US_SHOP, order["id"], "Nope Post", "TRK30002")
    await sync.stock(("TEE-RED-S", 5), ("UNMAPPED", 1))
    await sync.results(lambda rs: len(rs) >= 4)
    await sync.sandbox_json("POST", "/sandbox/products", {"shop_id": US_SHOP, "skus": [
        {"seller_sku": "GONE-SOON", "inventory": {LA: 1}}]})
    checked: dict[str, int] = {}
    for topic in (OMS_SHIPMENTS, OMS_INVENTORY, SYNC_RESULTS, TIKTOK_CATALOG):
        schema = json.loads((SCHEMAS / f"{topic}.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        async for record in read_to_end(sync.settings, topic):
            if record.value is None:
                continue
            value: Any = orjson.loads(record.value)
            jsonschema.validate(value, schema)
            if topic in (SYNC_RESULTS, TIKTOK_CATALOG):
                event = from_binary_event(KafkaMessage(headers=dict(record.headers), key=record.key,
                                                       value=record.value))
                assert event.get_type().startswith(("shopsync.sync.", "shopsync.catalog."))
                assert event.get_source() == "shopsync/store_sync" and event.get_time() is not None
            checked[topic] = checked.get(topic, 0) + 1
    assert checked[SYNC_RESULTS] >= 4 and checked[TIKTOK_CATALOG] >= 5
    assert checked[OMS_SHIPMENTS] == 2 and checked[OMS_INVENTORY] == 2


async def test_explain_shows_the_shipment_sync_status(sync: SyncHarness, tmp_path: Path) -> None:
    import httpx

    from services.audit.service import create_app as create_audit_app
    from services.audit.store import AuditStore
    from tests.servers import serve_app

    await sync.base.link("Main store", "LA Warehouse", shop_id=US_SHOP)
    order = await sync.base.create_order(shop_id=US_SHOP)
    await sync.start()
    await sync.ship(US_SHOP, order["id"], "ups", "1Z999AA10123456784")
    await sync.results(lambda rs: len(rs) == 1)
    async with serve_app(create_audit_app(sync.settings, AuditStore(tmp_path / "audit.db"))) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            async def indexed() -> bool:
                return "shipment_sync" in [r["kind"] for r in (await http.get(f"/orders/{order['id']}")).json()]

            await eventually(indexed, every=0.1, what="the shipment sync in the audit index")
        env_url = url
        result = await asyncio.to_thread(CliRunner().invoke, cli, ["explain", order["id"], "--shop", US_SHOP], env={
            "KAFKA_BOOTSTRAP_SERVERS": sync.settings.bootstrap_servers,
            "SHOPSYNC_TOPIC_PREFIX": sync.settings.shopsync_topic_prefix, "SHOPSYNC_AUDIT_URL": env_url})
    assert result.exit_code == 0, result.output
    assert "OMS shipped" in result.stdout and "shipment sync applied (mark_package_shipped)" in result.stdout
    assert "Shipment: tracking number 1Z999AA10123456784 is on TikTok (with mark_package_shipped)" in result.stdout
    assert "\nTrace ids: " in result.stdout  # the order's records carry the trace its webhook started

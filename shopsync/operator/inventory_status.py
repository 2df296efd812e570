"""`shopsync inventory status PRODUCT_CODE`: where one product's quantity stands, store by store, SKU by SKU.

The OMS quantity comes from `oms.inventory`, the targets from the mapping table and the catalog view, the last
outcome and the quantity pushed from `sync.results`, and TikTok's current quantity from a live Inventory Search.
"""

from __future__ import annotations

from typing import Any

import orjson

from services.store_sync.catalog import Catalog
from services.store_sync.inventory_plan import linked_warehouses, stock_from_search
from services.store_sync.records import BadRecord, StockLevel, parse_stock
from shared.kafka import create_producer, read_to_end
from shared.mapping_table import MappingTable
from shared.settings import Settings
from shared.stores.commands import StoreCommands
from shared.stores.crypto import MissingSecretKey, TokenCipher
from shared.stores.table import StoreTable
from shared.stores.tokens import StoreUnavailable, TokenKeeper
from shared.tiktok.client import TikTokClient
from shared.tiktok.errors import TikTokError
from shared.topics import OMS_INVENTORY, SYNC_RESULTS


async def inventory_status(settings: Settings, product_code: str) -> dict[str, Any]:
    newest: StockLevel | None = None
    async for record in read_to_end(settings, OMS_INVENTORY):
        if record.key == product_code.encode():
            try:
                level = parse_stock(record.value)
            except BadRecord:
                continue
            if newest is None or level.as_of_ts >= newest.as_of_ts:
                newest = level
    last: dict[tuple[str, str], dict[str, Any]] = {}
    async for record in read_to_end(settings, SYNC_RESULTS):
        if record.key == product_code.encode():
            doc = orjson.loads(record.value or b"{}")
            last[(str(doc.get("shop_id")), str(doc.get("sku_id") or doc.get("seller_sku")))] = doc
    table = await StoreTable().load(settings)
    mappings = MappingTable()
    await mappings.load(settings)
    catalog = await Catalog().load(settings)
    rows: list[dict[str, Any]] = []
    for key, mapping in sorted(mappings.mappings.items()):
        if mapping.product_code != product_code:
            continue
        shop_id, _, seller_sku = key.partition(":")
        store = table.stores.get(shop_id)
        entry = catalog.get(shop_id, seller_sku)
        name = store.nickname if store else shop_id
        skus = entry.skus if entry else []
        if not skus:
            outcome = last.get((shop_id, seller_sku), {})
            rows.append({"store": name, "shop_id": shop_id, "seller_sku": seller_sku, "sku_id": None,
                         "product_id": None, "pushed": None, "tiktok_quantity": None,
                         "last_status": outcome.get("status"), "last_reason": outcome.get("reason"),
                         "note": "no TikTok SKU with this seller SKU in the catalog view"})
            continue
        for sku in skus:
            outcome = last.get((shop_id, sku.sku_id)) or last.get((shop_id, seller_sku), {})
            rows.append({"store": name, "shop_id": shop_id, "seller_sku": seller_sku, "sku_id": sku.sku_id,
                         "product_id": sku.product_id, "warehouse_id": outcome.get("warehouse_id"),
                         "pushed": outcome.get("tiktok_quantity") if outcome.get("status") == "applied" else None,
                         "tiktok_quantity": None, "last_status": outcome.get("status"),
                         "last_reason": outcome.get("reason"), "last_at": outcome.get("synced_at")})
    await _live_quantities(settings, table, rows)
    oms = {"available": newest.available, "as_of": newest.as_of} if newest is not None else None
    return {"product_code": product_code, "oms": oms, "rows": rows}


async def _live_quantities(settings: Settings, table: StoreTable, rows: list[dict[str, Any]]) -> None:
    """TikTok's quantity in the linked warehouse of each row (best effort: a note says why when unknown)."""
    wanted = [r for r in rows if r["sku_id"]]
    if not wanted:
        return
    try:
        cipher = TokenCipher(settings.shopsync_secret_key.get_secret_value())
    except MissingSecretKey:
        for row in wanted:
            row["note"] = "TikTok quantity unknown: SHOPSYNC_SECRET_KEY is not set"
        return
    producer = create_producer(settings)
    await producer.start()
    client = TikTokClient.from_settings(settings)
    try:
        async with StoreCommands(settings, producer, requested_by="cli") as commands, table.following(settings):
            tokens = TokenKeeper(table, commands, client, cipher)  # a refresh is the owner's: the table shows it
            client.on_token_expired = tokens.on_token_expired
            for shop_id in {r["shop_id"] for r in wanted}:
                await _live_quantities_of(table, tokens, client, [r for r in wanted if r["shop_id"] == shop_id])
    finally:
        await client.aclose()
        await producer.stop()


async def _live_quantities_of(table: StoreTable, tokens: TokenKeeper, client: TikTokClient,
                              shop_rows: list[dict[str, Any]]) -> None:
    """One shop's rows: TikTok's quantity in the linked warehouse, or a note saying why it is unknown."""
    shop_id = shop_rows[0]["shop_id"]
    try:
        auth = await tokens.shop_auth(shop_id)
        stock = stock_from_search(await client.search_inventory(
            auth, list(dict.fromkeys(r["product_id"] for r in shop_rows))))
    except (StoreUnavailable, TikTokError) as exc:
        for row in shop_rows:
            row["note"] = f"TikTok quantity unknown: {exc}"
        return
    linked = linked_warehouses(table.stores[shop_id])
    for row in shop_rows:
        warehouses = stock.get(row["sku_id"], {})
        hits = [w for w in warehouses if linked is None or w in linked]
        row["tiktok_quantity"] = warehouses[hits[0]] if len(hits) == 1 else None
        row["tiktok_warehouses"] = warehouses

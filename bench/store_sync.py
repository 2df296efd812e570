"""Inventory sync against TikTok's rate limit: 10,000 OMS stock changes over 2,000 products mapped into two stores.

Every product code maps to one seller SKU in each of the sandbox's two shops (one TikTok product each, stocked in
the linked warehouse). The OMS changes are published as fast as Kafka takes them while store sync runs. Printed:
- calls ratio: TikTok Update Inventory calls ÷ the fewest possible (distinct product × store touched), aim 1.0;
  the same with Inventory Search calls counted too;
- convergence ratio: time from the first change published until both TikTok shops show every final quantity ÷
  the rate-limit bound (fewest calls ÷ 50 QPS per shop, shops in parallel), aim ≤ 1.2.
Run: `python -m bench store_sync` (BENCH_STORE_SYNC_PRODUCTS, BENCH_STORE_SYNC_CHANGES to scale it).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections import Counter

import orjson
import uvicorn

from bench.common import free_port, write_result
from services.store_sync.service import build_service
from services.tiktok_sandbox.app import create_app as create_sandbox_app
from services.tiktok_sandbox.config import SandboxConfig
from shared.admin import serve
from shared.envelope import rfc3339
from shared.kafka import create_producer
from shared.mappings import Mapping, mapping_key
from shared.settings import load_settings
from shared.stores.crypto import TokenCipher, generate_key
from shared.stores.model import LINKED, StoreRecord
from shared.stores.table import StoreWriter
from shared.topics import MAPPINGS, OMS_INVENTORY, topic_name
from shopsync.topic_admin import delete_prefixed_topics, ensure_topics
from tests.waiting import eventually

SHOPS = {"7494049642642441621": "7000000000000000001", "7494049642642441622": "7100000000000000001"}
QPS = 50.0
UPDATE_PATH = "/inventory/update"
SEARCH_PATH = "/product/202309/inventory/search"


async def run(products: int, changes: int) -> dict[str, object]:
    key, app_key, app_secret = generate_key(), "bench-app", uuid.uuid4().hex
    settings = load_settings(shopsync_topic_prefix=f"bench{uuid.uuid4().hex[:8]}.", tiktok_app_key=app_key,
                             tiktok_app_secret=app_secret, shopsync_secret_key=key, tiktok_rate_limit_qps=QPS)
    port = free_port()
    sandbox = create_sandbox_app(SandboxConfig(app_key=app_key, app_secret=app_secret, qps=int(QPS)))
    server = uvicorn.Server(uvicorn.Config(sandbox, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    settings = settings.model_copy(update={"tiktok_api_base": base, "tiktok_auth_base": base})
    world, api = sandbox.state.world, sandbox.state.api
    await ensure_topics(settings)
    stop = asyncio.Event()
    producer = create_producer(settings)
    await producer.start()
    try:
        cipher = TokenCipher(key)
        writer = StoreWriter(producer, settings)
        for n, (shop_id, warehouse) in enumerate(SHOPS.items()):
            shop, grant = world.shop(shop_id), world._grant(shop_id)
            await writer.put(StoreRecord(
                nickname=f"Bench {shop.region}", status=LINKED, shop_id=shop_id, shop_name=shop.name,
                region=shop.region, shop_cipher=shop.cipher, warehouse_name="bench", warehouse_ids=[warehouse],
                warehouse_names=["bench"], access_token_enc=cipher.encrypt(grant.access_token),
                refresh_token_enc=cipher.encrypt(grant.refresh_token), access_token_expires_at=grant.access_expires,
                refresh_token_expires_at=grant.refresh_expires))
            for i in range(products):
                world.add_product(shop_id, f"Bench {i}", "ACTIVATE", [(f"B{n}-{i:05d}", "9.99", {warehouse: 0})])
                mapping = Mapping(f"P-{i:05d}", rfc3339(time.time()), "bench", 1)
                await producer.send(topic_name(MAPPINGS, settings.shopsync_topic_prefix),
                                    orjson.dumps(mapping.to_dict()), key=mapping_key(shop_id, f"B{n}-{i:05d}").encode())
        await producer.flush()
        service = build_service(settings, stop=stop)
        task = asyncio.create_task(serve(service))
        def catalogs_loaded() -> bool:  # before the clock starts
            return service.inventory is not None and set(service.inventory.keeper.refreshed_at) == set(SHOPS)

        await eventually(catalogs_loaded, within=120, every=0.1, what="both catalogs loaded")
        calls_before = len(api.call_log)
        rng = random.Random(7)
        final: dict[str, int] = {}
        started = time.monotonic()
        for c in range(changes):
            code = f"P-{rng.randrange(products):05d}"
            final[code] = rng.randrange(1, 99_999)
            await producer.send(topic_name(OMS_INVENTORY, settings.shopsync_topic_prefix), orjson.dumps(
                {"product_code": code, "available": final[code], "as_of": rfc3339(time.time() + c * 1e-6)}),
                key=code.encode())
        await producer.flush()
        published_s = time.monotonic() - started
        expected = {(shop_id, f"B{n}-{code[2:]}"): qty for n, shop_id in enumerate(SHOPS)
                    for code, qty in final.items()}
        await eventually(lambda: _converged(world, expected), within=600, every=0.1,
                         what="TikTok's stock equal to the OMS's last levels")
        converged_s = time.monotonic() - started
        await asyncio.sleep(3 * settings.shopsync_inventory_coalesce_s)  # let trailing flushes add their calls
        calls = Counter("update" if c["path"].endswith(UPDATE_PATH) else "search" if c["path"] == SEARCH_PATH
                        else "other" for c in api.call_log[calls_before:])
        stop.set()
        await task
    finally:
        await producer.stop()
        server.should_exit = True
        await serving
        await delete_prefixed_topics(settings)
    fewest = len(final) * len(SHOPS)
    bound_s = (fewest / len(SHOPS)) / QPS
    return {
        "products": products, "changes": changes, "stores": len(SHOPS), "distinct_products_touched": len(final),
        "fewest_calls": fewest, "update_calls": calls["update"], "inventory_search_calls": calls["search"],
        "other_calls": calls["other"], "calls_ratio": round(calls["update"] / fewest, 3),
        "calls_ratio_with_searches": round((calls["update"] + calls["search"]) / fewest, 3),
        "publish_s": round(published_s, 2), "converged_s": round(converged_s, 2),
        "rate_limit_bound_s": round(bound_s, 2), "convergence_ratio": round(converged_s / bound_s, 3),
        "aims": {"calls_ratio": 1.0, "convergence_ratio": 1.2},
    }


def _converged(world: object, expected: dict[tuple[str, str], int]) -> bool:
    have = {(shop_id, sku.seller_sku): sum(sku.inventory.values())
            for shop_id, products in world.products.items() for p in products for sku in p.skus}  # type: ignore[attr-defined]
    return all(have.get(k) == v for k, v in expected.items())


def main() -> None:
    products = int(os.environ.get("BENCH_STORE_SYNC_PRODUCTS", "2000"))
    changes = int(os.environ.get("BENCH_STORE_SYNC_CHANGES", "10000"))
    write_result("store_sync", asyncio.run(run(products, changes)))


if __name__ == "__main__":
    main()

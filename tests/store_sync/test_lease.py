"""Store sync at two instances: one holds the lease and works, the other waits as a hot standby and takes over."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from services.store_sync.service import StoreSyncService, admin_app, store_sync_client
from tests.store_sync.conftest import US_SHOP, SyncHarness
from tests.store_sync.test_shipments import linked, of, shipments


async def until(predicate: Callable[[], object], timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_a_standby_does_nothing_until_the_active_instance_leaves_then_takes_over(sync: SyncHarness) -> None:
    await linked(sync)
    first, second = [await sync.base.create_order(shop_id=US_SHOP) for _ in range(2)]
    await sync.start()  # the active instance
    url = sync.base.sandbox.base_url
    client = store_sync_client(sync.settings, api_base=url, auth_base=url)
    standby = StoreSyncService(sync.settings, client=client)
    stop = asyncio.Event()
    app = admin_app(standby, stop)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sync") as admin:
        await until(lambda: standby.lease is not None and standby.lease.consumer.assignment())  # joined the group
        ready = await admin.get("/readyz")
        assert ready.status_code == 200 and "standby" in ready.text
        assert sync.service is not None and sync.service.active._value.get() == 1
        assert standby.active._value.get() == 0 and standby.inventory is None
        await sync.ship(US_SHOP, first["id"], "USPS", "TRK20001")
        await sync.results(lambda rs: of(rs, first["id"]))
        await sync.halt()  # the active instance stops: the standby takes the lease
        await until(lambda: standby.inventory is not None)
        assert standby.active._value.get() == 1
        await sync.ship(US_SHOP, second["id"], "USPS", "TRK20002")
        results = await sync.results(lambda rs: of(rs, second["id"]))
        assert [r["status"] for r in of(results, second["id"])] == ["applied"]
        assert [r["status"] for r in of(results, first["id"])] == ["applied"]  # once, by the first instance
    await client.aclose()
    assert len(await shipments(sync, first["id"])) == 1 and len(await shipments(sync, second["id"])) == 1

"""Store sync at two instances: one holds the lease and works, the other waits as a hot standby and takes over."""

from __future__ import annotations

import httpx

from services.store_sync.service import build_service, store_sync_app, store_sync_client
from tests.servers import serve_app
from tests.store_sync.conftest import US_SHOP, SyncHarness
from tests.store_sync.test_shipments import linked, of, shipments
from tests.waiting import eventually


async def test_a_standby_does_nothing_until_the_active_instance_leaves_then_takes_over(sync: SyncHarness) -> None:
    await linked(sync)
    first, second = [await sync.base.create_order(shop_id=US_SHOP) for _ in range(2)]
    await sync.start()  # the first instance: it takes the lease
    assert sync.service is not None
    active = sync.service
    await eventually(lambda: active.ready.is_set() and active.inventory is not None, what="the first instance active")
    work = active.active
    url = sync.base.sandbox.base_url
    standby = build_service(sync.settings, store_sync_client(sync.settings, api_base=url, auth_base=url))
    app = store_sync_app(sync.settings, lambda: standby)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as admin:
        await eventually(lambda: standby.ready.is_set(), what="the second instance a ready standby")
        assert (await admin.get("/readyz")).status_code == 200
        assert (await admin.get("/stats")).json() == {"ready": True, "active": False}
        assert standby.inventory is None and standby.active_gauge._value.get() == 0
        assert active.active is work and active.active_gauge._value.get() == 1  # its work went on through the join
        await sync.ship(US_SHOP, first["id"], "USPS", "TRK20001")
        await sync.results(lambda rs: of(rs, first["id"]))
        await sync.halt()  # the active instance stops and leaves the group: the standby takes the lease
        await eventually(lambda: standby.inventory is not None and standby.ready.is_set(), within=60,
                         what="the standby active")
        assert standby.active_gauge._value.get() == 1 and (await admin.get("/stats")).json()["active"] is True
        await sync.ship(US_SHOP, second["id"], "USPS", "TRK20002")
        results = await sync.results(lambda rs: of(rs, second["id"]))
        assert [r["status"] for r in of(results, second["id"])] == ["applied"]
        assert [r["status"] for r in of(results, first["id"])] == ["applied"]  # once, by the first instance
    assert len(await shipments(sync, first["id"])) == 1 and len(await shipments(sync, second["id"])) == 1

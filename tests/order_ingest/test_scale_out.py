"""Two ingest instances in one consumer group: the survivor of a departure decides the orders it took over."""

from __future__ import annotations

import asyncio

from services.order_ingest.service import IngestService
from tests.order_ingest.conftest import ORDERS_INGESTED, Harness, TopicView

LA = "7000000000000000001"


async def test_an_instance_that_takes_over_partitions_withdraws_orders_the_other_accepted(harness: Harness) -> None:
    await harness.link("Main store", "")
    await harness.start_ingest()
    other_stop = asyncio.Event()
    other = IngestService(harness.settings, client=harness.client())
    other_task = asyncio.get_running_loop().create_task(other.run(other_stop))
    assert harness.service is not None
    async with asyncio.timeout(30):  # both joined: the partitions are split between them
        while not (getattr(other, "ownership", None) and other.ownership.partitions
                   and getattr(harness.service, "ownership", None) and harness.service.ownership.partitions):
            await asyncio.sleep(0.05)
    orders = [await harness.create_order(warehouse_id=LA) for _ in range(12)]
    async with TopicView(harness.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len({r.key for r in rs}) == 12)
        decided_by_other = [o for o in orders if other.ownership.owns(f"{o['shop_id']}:{o['id']}")]
        assert decided_by_other, "the other instance owned some of the orders"
        other_stop.set()
        await other_task  # it leaves the group: the survivor takes its partitions over
        async with asyncio.timeout(30):
            while len(harness.service.ownership.partitions) < harness.service.ownership.count:
                await asyncio.sleep(0.05)
        for order in orders:
            await harness.move(order["id"], "CANCELLED")
        await view.until(lambda rs: sum(1 for v in view.latest().values() if v["lifecycle"] == "withdrawn") == 12)
    assert {v["withdrawn_reason"] for v in view.latest().values()} == {"status:CANCELLED"}

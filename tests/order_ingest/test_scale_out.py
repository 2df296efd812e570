"""Two ingest instances in one consumer group: the survivor of a departure decides the orders it took over."""

from __future__ import annotations

import asyncio

from services.order_ingest.wiring import build_service
from shared.admin import serve
from shared.topics import ORDERS_INGESTED
from tests.ingest_harness import Harness
from tests.topicview import TopicView
from tests.waiting import eventually

LA = "7000000000000000001"


async def test_an_instance_that_takes_over_partitions_withdraws_orders_the_other_accepted(harness: Harness) -> None:
    await harness.link("Main store", "")
    await harness.start_ingest()
    other = build_service(harness.settings, harness.client())
    other_task = asyncio.get_running_loop().create_task(serve(other))
    service = harness.service
    assert service is not None

    def both_own_partitions() -> bool:
        return all(s.ownership.partitions for s in (service, other))

    await eventually(both_own_partitions, what="both instances joined, the partitions split between them")
    orders = [await harness.create_order(warehouse_id=LA) for _ in range(12)]
    async with TopicView(harness.settings, ORDERS_INGESTED) as view:
        await view.until(lambda rs: len({r.key for r in rs}) == 12)
        decided_by_other = [o for o in orders if other.ownership.owns(f"{o['shop_id']}:{o['id']}")]
        assert decided_by_other, "the other instance owned some of the orders"
        other.stop()
        await other_task  # it leaves the group: the survivor takes its partitions over
        await eventually(lambda: len(service.ownership.partitions) == service.ownership.count,
                         what="the survivor owning every partition")
        for order in orders:
            await harness.move(order["id"], "CANCELLED")
        await view.until(lambda rs: sum(1 for v in view.latest().values() if v["lifecycle"] == "withdrawn") == 12)
    assert {v["withdrawn_reason"] for v in view.latest().values()} == {"status:CANCELLED"}

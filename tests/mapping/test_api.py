"""The mapping admin API: auth, validation, the SKU-ID mistake, CSV import, unmapped, preview, OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.mapping.api import MissingAdminToken, create_api
from services.mapping.service import MappingService
from shared.kafka import create_consumer, create_producer
from shared.settings import load_settings
from shared.topics import DLQ, ORDERS_INGESTED, topic_name
from tests.fakes import MemoryProducer
from tests.mapping_harness import SHOP, TOKEN, MappingHarness, make_order, publish
from tests.topicview import TopicView
from tests.waiting import eventually


@pytest.fixture
async def unit_api() -> AsyncIterator[tuple[httpx.AsyncClient, MappingService]]:
    """The admin API over a service that is not running, its producer in memory: for the answers it gives before
    anything is read or written (authentication, validation, the OpenAPI document). No broker."""
    settings = load_settings()
    service = MappingService(settings, producer=MemoryProducer(),  # type: ignore[arg-type]  # the fake
                             consumer=create_consumer(settings, None))  # never started
    transport = httpx.ASGITransport(app=create_api(service, TOKEN))
    async with httpx.AsyncClient(transport=transport, base_url="http://mapping") as client:
        yield client, service


async def wait_indexed(mapping: MappingHarness, count: int) -> None:
    await eventually(lambda: len(mapping.service.state.orders) >= count, what=f"{count} orders indexed")


@pytest.mark.parametrize("header", [None, "Bearer wrong", "test-admin-token", "bearer test-admin-token"])
async def test_admin_api_without_the_right_token_is_401(unit_api: tuple[httpx.AsyncClient, MappingService],
                                                        header: str | None) -> None:
    anonymous, service = unit_api
    headers = {"Authorization": header} if header else {}
    for method, path in (("GET", "/mappings"), ("PUT", f"/mappings/{SHOP}/A"), ("GET", "/unmapped"),
                         ("POST", "/mappings/import"), ("POST", "/mappings/preview")):
        answer = await anonymous.request(method, path, headers=headers, json={"product_code": "X"})
        assert answer.status_code == 401 and answer.json()["error"] == "unauthorized"
    assert service.table.mappings == {}


async def test_api_refuses_to_start_without_a_token() -> None:
    settings = load_settings()
    with pytest.raises(MissingAdminToken):
        service = MappingService(settings, producer=create_producer(settings), consumer=create_consumer(settings, None))
        create_api(service, "")


@pytest.mark.parametrize(("path", "body", "code"), [
    (f"/mappings/{SHOP}/%20", {"product_code": "P"}, "empty_field"),
    (f"/mappings/{SHOP}/RED-L", {"product_code": "  "}, "empty_field"),
    (f"/mappings/{SHOP}/RED-L", {"product_code": 5}, "empty_field"),
    (f"/mappings/{SHOP}/RED-L", {}, "empty_field"),
    (f"/mappings/{SHOP}/RED-L", {"product_code": " P"}, "invalid_field"),
    ("/mappings/%20/RED-L", {"product_code": "P"}, "empty_field"),
])
async def test_empty_or_padded_fields_are_400(unit_api: tuple[httpx.AsyncClient, MappingService], path: str,
                                             body: dict[str, object], code: str) -> None:
    api, _ = unit_api
    answer = await api.put(path, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 400 and answer.json()["error"] == code


async def test_sku_id_instead_of_seller_sku_is_422_naming_the_product_and_the_fix(mapping: MappingHarness) -> None:
    await publish(mapping.settings, make_order("o1", [("RED-L", "1729592969700000001")]),
                  make_order("o2", [("", "1729592969700000099")]))
    await wait_indexed(mapping, 2)
    wrong = await mapping.put("1729592969700000001", "P-1")
    assert wrong.status_code == 422
    detail = wrong.json()["detail"]
    assert "Product 1729592969700000001" in detail and '"RED-L"' in detail
    empty = await mapping.put("1729592969700000099", "P-1")
    assert empty.status_code == 422 and "empty on TikTok" in empty.json()["detail"]
    assert (await mapping.put("RED-L", "P-1")).status_code == 200


async def test_csv_import_is_all_or_nothing_and_names_the_line(mapping: MappingHarness) -> None:
    bad = f"shop_id,seller_sku,product_code\n{SHOP},RED-L,P-1\n{SHOP},BLUE-M,\n"
    answer = await mapping.api.post("/mappings/import", content=bad)
    assert answer.status_code == 400
    assert answer.json()["detail"] == "line 3: product_code must be a non-empty string"
    assert (await mapping.api.get("/mappings")).json() == []
    header = await mapping.api.post("/mappings/import", content="sku,code\nA,B\n")
    assert header.status_code == 400 and "line 1" in header.json()["detail"]
    good = f"shop_id,seller_sku,product_code\n{SHOP},RED-L,P-1\n{SHOP},BLUE-M,P-2\n"
    assert (await mapping.api.post("/mappings/import", content=good)).json() == {"imported": 2}
    rows = (await mapping.api.get("/mappings", params={"shop_id": SHOP})).json()
    assert [(r["seller_sku"], r["product_code"], r["version"]) for r in rows] == [("BLUE-M", "P-2", 1),
                                                                                  ("RED-L", "P-1", 1)]


async def test_get_put_versions_and_404(mapping: MappingHarness) -> None:
    assert (await mapping.api.get(f"/mappings/{SHOP}/RED-L")).status_code == 404
    await mapping.put("RED-L", "P-1")
    await mapping.put("RED-L", "P-2")
    row = (await mapping.api.get(f"/mappings/{SHOP}/RED-L")).json()
    assert (row["product_code"], row["version"], row["updated_by"]) == ("P-2", 2, "admin-api")
    assert (await mapping.api.delete(f"/mappings/{SHOP}/NOPE")).status_code == 404


async def test_unmapped_lists_waiting_orders_and_preview_counts_them(mapping: MappingHarness) -> None:
    await publish(mapping.settings, *[make_order(f"o{i}", [("RED-L", "k1")]) for i in range(7)],
                  make_order("o9", [("BLUE-M", "k2")]))
    await wait_indexed(mapping, 8)
    rows = (await mapping.api.get("/unmapped")).json()
    assert [(r["seller_sku"], r["orders_waiting"], len(r["order_ids"])) for r in rows] == [("RED-L", 7, 5),
                                                                                          ("BLUE-M", 1, 1)]
    preview = (await mapping.api.post("/mappings/preview", json={"shop_id": SHOP, "seller_sku": "RED-L",
                                                                "product_code": "P-1"})).json()
    assert preview == {"mapping_key": f"{SHOP}:RED-L", "open_orders_with_sku": 7, "would_reemit": 7}
    await mapping.put("RED-L", "P-1")
    same = (await mapping.api.post("/mappings/preview", json={"shop_id": SHOP, "seller_sku": "RED-L",
                                                             "product_code": "P-1"})).json()
    assert same["would_reemit"] == 0


async def test_openapi_document_describes_the_endpoints(unit_api: tuple[httpx.AsyncClient, MappingService]) -> None:
    api, _ = unit_api
    doc = (await api.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    assert {"/mappings", "/mappings/{shop_id}/{seller_sku}", "/mappings/import", "/mappings/preview",
            "/unmapped"} <= set(doc["paths"])


async def test_poison_orders_go_to_the_dlq_and_the_partition_goes_on(mapping: MappingHarness) -> None:
    producer = create_producer(mapping.settings)
    await producer.start()
    await producer.send_and_wait(topic_name(ORDERS_INGESTED, mapping.settings.shopsync_topic_prefix), b"{oops",
                                 key=f"{SHOP}:bad".encode(), partition=0)
    await producer.stop()
    await publish(mapping.settings, make_order("o1", [("RED-L", "k1")]))
    async with TopicView(mapping.settings, DLQ) as dlq:
        await dlq.until(lambda rs: len(rs) == 1)
        assert dict(dlq.records[0].headers)["shopsync_dlq_reason"].startswith(b"undecodable_order")
    async with mapping.enriched() as view:
        await view.until(lambda rs: len(rs) == 1)

"""The metrics added for alerts: TikTok calls by API/shop/result, store status, consumer lag, dead letters."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, generate_latest

from services.mapping.service import MappingMetrics
from services.stores.metrics import StoresMetrics
from shared.kafka_metrics import ConsumerLag
from shared.producer import ManagedProducer, ProducerMetrics
from shared.stores.model import StoreRecord
from shared.stores.table import StoreTable
from shared.tiktok.client import TikTokClient, api_template
from shared.tiktok.errors import Transient
from shared.tiktok.metrics import TikTokMetrics
from shared.tiktok.models import ShopAuth
from shared.tiktok.retry import RetryPolicy


def test_api_label_is_the_path_template_never_an_id() -> None:
    assert api_template("/product/202309/products/1729/inventory/update") == \
        "/product/202309/products/{product_id}/inventory/update"
    assert api_template("/fulfillment/202309/orders/5765/packages") == "/fulfillment/202309/orders/{order_id}/packages"
    assert api_template("/order/202309/orders") == "/order/202309/orders"
    assert api_template("/somewhere/else/42") == "other"


async def test_every_http_call_is_counted_by_api_shop_and_result_retries_included() -> None:
    answers = [httpx.Response(429, json={"code": 36009002, "message": "busy", "request_id": "r", "data": {}}),
               httpx.Response(200, json={"code": 0, "message": "ok", "request_id": "r", "data": {}})]

    async def no_sleep(_: float) -> None: ...

    registry = CollectorRegistry()
    client = TikTokClient(app_key="k", app_secret="s", api_base="http://tt", auth_base="http://a", qps=1e9,
                          transport=httpx.MockTransport(lambda _: answers.pop(0)), retry=RetryPolicy(attempts=2),
                          metrics=TikTokMetrics(registry), sleep=no_sleep)
    await client.get_warehouses(ShopAuth("7001", "c", "t"))
    labels = {"api": "/logistics/202309/warehouses", "shop_id": "7001"}
    assert registry.get_sample_value("tiktok_api_requests_total", labels | {"result": "rate_limited"}) == 1
    assert registry.get_sample_value("tiktok_api_requests_total", labels | {"result": "ok"}) == 1
    assert registry.get_sample_value("tiktok_api_request_seconds_count",
                                     {"api": "/logistics/202309/warehouses"}) == 2


async def test_a_connection_error_is_counted_as_unavailable() -> None:
    def refuse(_: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    registry = CollectorRegistry()
    client = TikTokClient(app_key="k", app_secret="s", api_base="http://tt", auth_base="http://a", qps=1e9,
                          transport=httpx.MockTransport(refuse), retry=RetryPolicy(attempts=1),
                          metrics=TikTokMetrics(registry))
    with pytest.raises(Transient, match="connection error"):
        await client.get_warehouses(ShopAuth("7001", "c", "t"))
    assert registry.get_sample_value("tiktok_api_requests_total", {
        "api": "/logistics/202309/warehouses", "shop_id": "7001", "result": "unavailable"}) == 1


def test_store_status_is_one_per_store_for_its_status_and_expiry_is_exported() -> None:
    table = StoreTable()
    table.stores["1"] = StoreRecord(nickname="Main", status="linked", shop_id="1")
    table.stores["2"] = StoreRecord(nickname="Outlet", status="authorization_expiring", shop_id="2",
                                    authorization_expires_at=1_900_000_000)
    metrics = StoresMetrics()
    metrics.watch_stores(table)
    sample = metrics.registry.get_sample_value
    assert sample("store_status", {"shop_id": "1", "nickname": "Main", "status": "linked"}) == 1
    assert sample("store_status", {"shop_id": "1", "nickname": "Main", "status": "deauthorized"}) == 0
    assert sample("store_status", {"shop_id": "2", "nickname": "Outlet", "status": "authorization_expiring"}) == 1
    assert sample("store_authorization_expiry_timestamp_seconds", {"shop_id": "2", "nickname": "Outlet"}) == 1.9e9
    assert sample("store_authorization_expiry_timestamp_seconds", {"shop_id": "1", "nickname": "Main"}) is None
    table.stores["1"].status = "deauthorized"  # read at scrape time
    assert sample("store_status", {"shop_id": "1", "nickname": "Main", "status": "deauthorized"}) == 1


@dataclass
class FakeConsumer:
    group_id: str | None
    high: dict[TopicPartition, int]
    committed_offsets: dict[TopicPartition, int] = field(default_factory=dict)

    def assignment(self) -> set[TopicPartition]:
        return set(self.high)

    def highwater(self, partition: TopicPartition) -> int | None:
        return self.high.get(partition)


def test_consumer_lag_sums_assigned_partitions_per_group_and_topic() -> None:
    registry = CollectorRegistry()
    lag = ConsumerLag(registry)
    t0, t1, other = TopicPartition("t", 0), TopicPartition("t", 1), TopicPartition("u", 0)
    lag.watch(FakeConsumer("g", {t0: 10, t1: 5, other: 3}, {t0: 7, t1: 5}))  # `other` never committed: not counted
    lag.watch(FakeConsumer("h", {t0: 10}, {t0: 10, TopicPartition("t", 9): 0}))  # t9 no longer assigned
    lag.watch(FakeConsumer(None, {t0: 10}))  # a reader without a group is not watched
    assert registry.get_sample_value("kafka_consumer_lag", {"group": "g", "topic": "t"}) == 3
    assert registry.get_sample_value("kafka_consumer_lag", {"group": "h", "topic": "t"}) == 0
    assert registry.get_sample_value("kafka_consumer_lag", {"group": "g", "topic": "u"}) is None
    assert generate_latest(registry).count(b"# TYPE kafka_consumer_lag gauge") == 1


def test_dead_letters_are_counted_on_the_producers_registry() -> None:
    registry = CollectorRegistry()
    producer = ManagedProducer(lambda: None, metrics=ProducerMetrics(registry))  # type: ignore[arg-type,return-value]
    producer.count_dead_letter("tiktok.webhooks")
    assert registry.get_sample_value("dlq_records_total", {"source_topic": "tiktok.webhooks"}) == 1


def test_unmapped_lines_of_an_incomplete_enrichment_are_counted_by_status() -> None:
    metrics = MappingMetrics()
    lines = [{"mapping_status": "mapped"}, {"mapping_status": "unmapped"}, {"mapping_status": "missing_seller_sku"},
             {"mapping_status": "unmapped"}]
    metrics.count_emitted("order_update", {"mapping_state": "incomplete", "lines": lines})
    metrics.count_emitted("order_update", {"mapping_state": "complete", "lines": [{"mapping_status": "mapped"}]})
    sample = metrics.registry.get_sample_value
    assert sample("mapping_unmapped_lines_total", {"status": "unmapped"}) == 2
    assert sample("mapping_unmapped_lines_total", {"status": "missing_seller_sku"}) == 1
    assert sample("mapping_enriched_emitted_total", {"cause": "order_update"}) == 2

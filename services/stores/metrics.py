"""The stores owner's Prometheus metrics (on its admin port's `/metrics`)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shared.kafka_metrics import ConsumerLag
from shared.stores.model import DEAUTHORIZED, EXPIRING, LINKED, NEEDS_RELINK
from shared.stores.table import StoreTable
from shared.tiktok.metrics import TikTokMetrics

STATUSES = (LINKED, EXPIRING, DEAUTHORIZED, NEEDS_RELINK)  # a pending link is not a store yet


class StoresMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.commands = Counter("store_commands_total", "Store commands answered, by kind and outcome",
                                ["kind", "status"], registry=self.registry)
        self.redelivered = Counter("store_commands_redelivered_total", "Commands delivered again after they were "
                                   "applied (answered once, not applied again)", registry=self.registry)
        self.undecodable = Counter("store_commands_undecodable_total", "Records on the command topic that are not "
                                   "commands (dead-lettered)", registry=self.registry)
        self.duplicates = Counter("webhooks_duplicate_total", "Authorization webhooks whose tts_notification_id "
                                  "was already acted on (dropped)", ["type"], registry=self.registry)
        self.stale = Counter("webhooks_stale_total", "Authorization webhooks older than the store's last "
                             "authorization (ignored)", ["type"], registry=self.registry)
        self.lag = ConsumerLag(self.registry)
        self.tiktok = TikTokMetrics(self.registry)

    def watch_stores(self, table: StoreTable) -> None:
        """Export the status of every store in `table` at each scrape (`store_status`, `store_authorization_*`)."""
        self.registry.register(StoreStatusCollector(table))


class StoreStatusCollector(Collector):
    """`store_status{shop_id, nickname, status}` (1 for the store's status, 0 for the others) and
    `store_authorization_expiry_timestamp_seconds{shop_id, nickname}` (when TikTok said it expires)."""

    def __init__(self, table: StoreTable) -> None:
        self._table = table

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        status, expiry = self._families()
        for store in sorted(self._table.stores.values(), key=lambda s: s.shop_id):
            labels = [store.shop_id, store.nickname]
            for name in STATUSES:
                status.add_metric([*labels, name], 1 if store.status == name else 0)
            if store.authorization_expires_at:
                expiry.add_metric(labels, store.authorization_expires_at)
        yield status
        yield expiry

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (GaugeMetricFamily("store_status", "1 for each linked store's current status (linked, "
                                  "authorization_expiring, deauthorized, needs_relink), 0 for the others",
                                  labels=["shop_id", "nickname", "status"]),
                GaugeMetricFamily("store_authorization_expiry_timestamp_seconds", "When the seller's "
                                  "authorization expires (Unix time), for stores TikTok said it is expiring",
                                  labels=["shop_id", "nickname"]))

"""Prometheus metrics for the ingest, on a per-worker registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from shared.kafka_metrics import ConsumerLag
from shared.tiktok.metrics import TikTokMetrics


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("ingest_events_consumed_total", "Webhook records consumed", ["type"], registry=r)
        self.api_calls = Counter("ingest_api_calls_total", "TikTok API calls", ["call"], registry=r)
        self.api_errors = Counter("ingest_api_errors_total", "TikTok API errors by code", ["code"], registry=r)
        self.accepted = Counter("ingest_orders_accepted_total", "Orders published as accepted", registry=r)
        self.skipped = Counter("ingest_orders_skipped_total", "Orders skipped, by reason", ["reason"], registry=r)
        self.withdrawn = Counter("ingest_orders_withdrawn_total", "Orders withdrawn", registry=r)
        self.dlq = Counter("ingest_dlq_total", "Records sent to the DLQ", ["reason"], registry=r)
        self.found_by_poll = Counter("orders_found_by_poll_total", "Orders first accepted through an order check "
                                     "(scheduled reconciliation or `shopsync sync`)", registry=r)
        self.checks = Counter("ingest_order_checks_total", "Order checks handled: decided (fetched), or up_to_date "
                              "(already decided at the version found: no call)", ["result"], registry=r)
        self.stale = Counter("webhooks_stale", "Webhooks older than what was already decided (changed nothing)",
                             ["type"], registry=r)
        self.duplicates = Counter("webhooks_duplicate", "Webhooks whose tts_notification_id was already acted on",
                                  ["type"], registry=r)
        self.lag = ConsumerLag(r)  # kafka_consumer_lag{group, topic}
        self.tiktok = TikTokMetrics(r)

    def count(self, outcome: str, reasons: tuple[str, ...] | list[str] = ()) -> None:
        """Count one order's outcome."""
        if outcome == "accepted":
            self.accepted.inc()
        elif outcome == "withdrawn":
            self.withdrawn.inc()
        elif outcome == "skipped":
            self.count_skip(reasons)

    def count_skip(self, reasons: tuple[str, ...] | list[str]) -> None:
        for reason in reasons:
            self.skipped.labels(reason=reason_label(reason)).inc()


def reason_label(reason: str) -> str:
    """A bounded metric label: `warehouse:<id>:not_linked` becomes `warehouse:not_linked`."""
    parts = reason.split(":")
    return f"{parts[0]}:{parts[-1]}" if len(parts) > 2 else reason

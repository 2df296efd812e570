"""Prometheus metrics for the gateway, on a per-app registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class GatewayMetrics:
    """Requests by result, request/publish latency, signature failures, payload sizes."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("gateway_requests_total", "Webhook requests by result", ["result"],
                                registry=self.registry)
        self.signature_failures = Counter("gateway_signature_failures_total", "Webhooks with a bad signature",
                                          registry=self.registry)
        self.request_seconds = Histogram("gateway_request_seconds", "Webhook request latency",
                                         buckets=LATENCY_BUCKETS, registry=self.registry)
        self.publish_seconds = Histogram("gateway_publish_seconds", "Kafka publish (ack) latency",
                                         buckets=LATENCY_BUCKETS, registry=self.registry)
        self.payload_bytes = Histogram("gateway_payload_bytes", "Webhook body sizes",
                                       buckets=(256, 1024, 4096, 16384, 65536, 262144, 1048576),
                                       registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)

"""Prometheus metrics of the TikTok client: every HTTP call, by API, shop and result, on the caller's registry.

`api` is the path template (`/product/202309/products/{product_id}`), never a path with an id in it; `shop_id` is
bounded by the stores linked. Retries are separate calls, so a 429 storm shows as `result="rate_limited"` at once,
long before a call gives up.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from shared.tiktok.errors import (
    InvalidSignature,
    NotFound,
    PermissionDenied,
    RateLimited,
    TikTokError,
    TokenExpired,
    Transient,
)

RESULTS: dict[type[TikTokError], str] = {RateLimited: "rate_limited", TokenExpired: "token_expired",
                                         Transient: "unavailable", PermissionDenied: "permission_denied",
                                         NotFound: "not_found", InvalidSignature: "invalid_signature"}
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class TikTokMetrics:
    """`tiktok_api_requests_total{api, shop_id, result}` and `tiktok_api_request_seconds{api}`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("tiktok_api_requests_total", "HTTP calls to the TikTok Shop API, by API path "
                                "template, shop and result (ok, rate_limited, unavailable, token_expired, ...)",
                                ["api", "shop_id", "result"], registry=registry)
        self.seconds = Histogram("tiktok_api_request_seconds", "TikTok Shop API call latency, by API path template",
                                 ["api"], buckets=LATENCY_BUCKETS, registry=registry)

    def observe(self, api: str, shop_id: str | None, error: BaseException | None, seconds: float) -> None:
        """Count one HTTP call (`api`: its path template) and its latency."""
        self.requests.labels(api=api, shop_id=shop_id or "", result=result_label(error)).inc()
        self.seconds.labels(api=api).observe(seconds)


def result_label(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    for kind, label in RESULTS.items():
        if isinstance(error, kind):
            return label
    return "error"

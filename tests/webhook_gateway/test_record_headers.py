"""The hot path's record headers are the CloudEvents headers `record_headers` builds, whatever it has kept."""

from __future__ import annotations

import pytest

from services.webhook_gateway import envelope
from services.webhook_gateway.envelope import Received, RecordHeaders, record_headers

CASES = [
    Received(1, "7494049642642441621", 1_800_000_000, "7327112393057371910", "576461413038785752"),
    Received(999, "7494049642642441621", 1_800_000_001, None, None),  # unknown type; ce_id is the body's SHA-256
    Received(4, "111", 1_800_000_002, "n-2", None),
]


@pytest.mark.parametrize("webhook", CASES, ids=["order", "unknown_type", "package"])
def test_kept_headers_equal_freshly_built_ones(webhook: Received) -> None:
    headers = RecordHeaders()
    body = b'{"any": "signed bytes"}'
    for received_at in (1_800_000_003.25, 1_800_000_004.0):  # the second call uses what the first kept
        assert headers.of(webhook, body, received_at, "00-ab-cd-01") == record_headers(
            webhook, body, received_at, "00-ab-cd-01")


def test_what_is_kept_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(envelope, "MAX_KEPT", 3)
    headers = RecordHeaders()
    for shop in range(10):
        webhook = Received(1, str(shop), 1_800_000_000, f"n-{shop}", "1")
        assert headers.of(webhook, b"{}", 1.0, "t") == record_headers(webhook, b"{}", 1.0, "t")
    assert len(headers._sources) <= 3

"""CloudEvents binary-mode envelope: build and read headers."""

from datetime import UTC, datetime

import pytest

from shared.envelope import CloudEvent, EnvelopeError, EventHeaders, from_record, rfc3339, to_headers


def test_headers_round_trip_with_extensions_and_plain_headers() -> None:
    event = CloudEvent(id="n-1", source="tiktok-shop/123", type="tiktok.shop.order_status_change",
                       data=b'{"a":1}', time="2026-11-25T10:00:00Z", subject="123:456",
                       extensions={"traceid": "abc"})
    headers = to_headers(event, extra=[("shopsync_received_at", "2026-11-25T10:00:01Z")])
    names = [h[0] for h in headers]
    assert names[:4] == ["ce_specversion", "ce_id", "ce_source", "ce_type"]
    assert ("content-type", b"application/json") in headers
    assert ("shopsync_received_at", b"2026-11-25T10:00:01Z") in headers
    assert from_record(headers, event.data) == event


@pytest.mark.parametrize("drop", ["ce_specversion", "ce_id", "ce_source", "ce_type"])
def test_missing_required_attribute_is_an_envelope_error(drop: str) -> None:
    headers = [h for h in to_headers(CloudEvent(id="1", source="s", type="t", data=b"{}")) if h[0] != drop]
    with pytest.raises(EnvelopeError, match=drop):
        from_record(headers, b"{}")


def test_wrong_spec_version_is_rejected() -> None:
    headers = [("ce_specversion", b"0.3"), ("ce_id", b"1"), ("ce_source", b"s"), ("ce_type", b"t")]
    with pytest.raises(EnvelopeError, match="specversion"):
        from_record(headers, b"{}")


def test_extension_names_must_follow_the_spec() -> None:
    with pytest.raises(EnvelopeError):
        to_headers(CloudEvent(id="1", source="s", type="t", data=b"", extensions={"replay_id": "x"}))


def test_rfc3339_formats_utc() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1.5) == "1970-01-01T00:00:01.500000Z"
    assert rfc3339(datetime(2026, 11, 25, 12, 0, tzinfo=UTC)) == "2026-11-25T12:00:00Z"


def test_event_headers_are_the_headers_to_headers_builds() -> None:
    event = CloudEvent(id="s:o:r2", source="shopsync/mapping", type="shopsync.order.enriched", data=b"{}",
                       time="2026-11-25T10:00:00.5Z", subject="s:o")
    extra = [("shopsync_cause", "order_update"), ("traceparent", "00-" + "1" * 32 + "-" + "2" * 16 + "-01")]
    built = EventHeaders(event.source, event.type).headers(event.id, "2026-11-25T10:00:00.5Z", "s:o",
                                                           [(name, value.encode()) for name, value in extra])
    assert built == to_headers(event, extra)

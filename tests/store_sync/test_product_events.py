"""Product and inventory webhooks parse with ids as exact strings, whatever their JSON type."""

from __future__ import annotations

import pytest

from services.store_sync.product_events import ProductEvent, parse_product_event

SHOP = '"shop_id":"7494049642642441621","timestamp":1644412885'


@pytest.mark.parametrize(("body", "event"), [
    (b'{"type":16,' + SHOP.encode() + b',"data":{"product_id":1729592969700000000,"update_time":1}}',
     ProductEvent(16, "7494049642642441621", "1729592969700000000", update_time=1)),
    (b'{"type":16,' + SHOP.encode() + b',"data":{"product_id":732357708734418520388}}',  # > 64 bits
     ProductEvent(16, "7494049642642441621", "732357708734418520388")),
    (b'{"type":5,' + SHOP.encode() + b',"data":{"product_id":1729592969700000000,"status":"PRODUCT_STATUS_CHANGED",'
     b'"suspended_reason":"","update_time":1627587600}}',  # `status` is an audit event: logged, never a status
     ProductEvent(5, "7494049642642441621", "1729592969700000000", update_time=1627587600,
                  audit_event="PRODUCT_STATUS_CHANGED")),
    (b'{"type":15,' + SHOP.encode() + b',"data":{"product_id":"17295929697","changed_fields":[]}}',
     ProductEvent(15, "7494049642642441621", "17295929697")),
    (b'{"type":27,' + SHOP.encode() + b',"data":{"product_id":"732357708734418520388",'
     b'"sku_id":73235770873441823254,"update_time":"1627587600"}}',  # a numeric string is read too
     ProductEvent(27, "7494049642642441621", "732357708734418520388", sku_id="73235770873441823254",
                  update_time=1627587600)),
])
def test_ids_are_exact_strings_whether_sent_as_strings_or_numbers(body: bytes, event: ProductEvent) -> None:
    assert parse_product_event(body) == event


@pytest.mark.parametrize("body", [
    b'{"type":1,' + SHOP.encode() + b',"data":{"order_id":"1"}}',  # not a product event
    b'{"type":16,' + SHOP.encode() + b',"data":{}}',  # no product id
    b'{"type":16,' + SHOP.encode() + b',"data":{"product_id":true}}',
    b'{"type":16,' + SHOP.encode() + b',"data":{"product_id":1.5e20}}',  # a float has lost digits already
    b'{"type":15,' + SHOP.encode() + b',"data":{"product_id":"17295929697","update_time":1.5}}',  # malformed
    b'{"type":16,"shop_id":"","data":{"product_id":"1"}}',
    b"not json", None,
])
def test_bodies_without_a_usable_product_id_are_ignored(body: bytes | None) -> None:
    assert parse_product_event(body) is None

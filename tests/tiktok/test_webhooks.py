"""The webhook parser (no broker): TikTok's documented samples read as typed data; a malformed webhook names its
field; ids stay exact strings whatever their JSON type."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from shared.tiktok.errors import MalformedPayload
from shared.tiktok.webhooks import (
    CancellationStatusChange,
    InventoryStatusChange,
    OrderStatusChange,
    OtherEvent,
    PackageUpdate,
    ProductChange,
    RecipientAddressUpdate,
    SellerDeauthorization,
    UpcomingAuthorizationExpiration,
    UpdatedPackage,
    parse_envelope,
    parse_webhook,
)
from tests.order_ingest.test_webhook_samples import PRODUCT_ID, samples

SHOP = "7494049642642441621"
NOW = 1_700_000_000
ORDERS = ["576461413038785752", "576461413038785753"]


def test_every_documented_sample_reads_as_its_typed_data() -> None:
    one, two = ORDERS
    parsed = [parse_webhook(orjson.dumps(doc)) for doc in samples(SHOP, ORDERS, NOW)]
    assert [w.data for w in parsed] == [
        OrderStatusChange(one, "AWAITING_SHIPMENT", NOW),
        RecipientAddressUpdate(one, NOW),
        PackageUpdate((UpdatedPackage("1152321127278713123", (one, two)),), "COMBINE", NOW),
        ProductChange(str(PRODUCT_ID), NOW, audit_event="PRODUCT_STATUS_CHANGED"),  # a JSON number id
        ProductChange(str(PRODUCT_ID), NOW),
        ProductChange(str(PRODUCT_ID), NOW),
        InventoryStatusChange("732357708734418520388", "73235770873441823254", "LOW_STOCK", NOW),
        UpcomingAuthorizationExpiration(NOW + 30 * 86400, "Your authorization will expire soon"),  # a string
        SellerDeauthorization(f"Shop_id {SHOP} is deauthorized"),
    ]
    assert [w.type for w in parsed] == [1, 3, 4, 5, 15, 16, 27, 7, 6]
    assert {w.shop_id for w in parsed} == {SHOP} and {w.timestamp for w in parsed} == {NOW}
    assert parsed[1].tts_notification_id is None  # TikTok's type 3 sample has none
    assert [w.order_ids for w in parsed[:3]] == [(one,), (one,), (one, two)]  # type 4: the package list (§10.3)
    assert [w.order_id for w in parsed[:3]] == [one, one, None]


def test_the_api_facts_inventory_sample_parses() -> None:  # API facts §9.3, verbatim
    body = (b'{"type":27,"tts_notification_id":"7327112393057371910","shop_id":"7494049642642441621","timestamp":'
            b'1644412885,"data":{"product_id":"732357708734418520388","sku_id":"73235770873441823254",'
            b'"trigger_reason":{"alert_type":"PREDICTION","lead_days":21},"current_inventory_status":"LOW_STOCK",'
            b'"inventory_distribution":{"total_quantity":100,"available_quantity":50,"creator_reserved_quantity":20,'
            b'"campaign_reserved_quantity":20,"committed_quantity":10},"update_time":1627587600}}')
    assert parse_webhook(body).data == InventoryStatusChange("732357708734418520388", "73235770873441823254",
                                                             "LOW_STOCK", 1627587600)


def test_the_webhook_status_is_kept_as_tiktok_spells_it_and_other_topics_read_as_other_events() -> None:
    cancel = parse_webhook({"type": 1, "shop_id": SHOP, "timestamp": 1, "data": {"order_id": "1",
                                                                                 "order_status": "CANCEL"}})
    assert cancel.data == OrderStatusChange("1", "CANCEL", None)
    cancellation = parse_webhook({"type": 11, "shop_id": SHOP, "timestamp": 1, "data": {
        "order_id": "9", "cancellations_role": "BUYER", "cancel_status": "CANCELLATION_REQUEST_PENDING"}})
    assert cancellation.data == CancellationStatusChange("9", "CANCELLATION_REQUEST_PENDING", None)
    unknown = parse_webhook({"type": 999, "shop_id": SHOP, "timestamp": 1, "data": {"order_id": 57, "x": [1]}})
    assert (unknown.data, unknown.order_ids) == (OtherEvent(), ("57",))


@pytest.mark.parametrize(("body", "product_id"), [
    (b'{"type":16,"shop_id":"1","timestamp":1,"data":{"product_id":732357708734418520388}}',  # beyond 64 bits
     "732357708734418520388"),
    (b'{"type":16,"shop_id":"1","timestamp":1,"data":{"product_id":18446744073709551616}}', "18446744073709551616"),
    (b'{"type":16,"shop_id":"1","timestamp":1,"data":{"product_id":1729592969700000000}}', "1729592969700000000"),
    (b'{"type":16,"shop_id":"1","timestamp":1,"data":{"product_id":"017295929697"}}', "017295929697"),
])
def test_ids_are_exact_strings_whatever_their_json_type(body: bytes, product_id: str) -> None:
    data = parse_webhook(body).data
    assert isinstance(data, ProductChange) and data.product_id == product_id


def test_a_decoded_body_that_lost_an_ids_digits_is_refused() -> None:
    doc = orjson.loads(b'{"type":16,"shop_id":"1","timestamp":1,"data":{"product_id":732357708734418520388}}')
    with pytest.raises(MalformedPayload) as info:
        parse_webhook(doc)
    assert info.value.field == "data.product_id"


def _doc(event_type: int = 1, **data: Any) -> dict[str, Any]:
    return {"type": event_type, "tts_notification_id": "n1", "shop_id": SHOP, "timestamp": NOW, "data": data}


def _without(key: str) -> dict[str, Any]:
    doc = _doc(order_id="1")
    del doc[key]
    return doc


# body -> (the field named, missing_field or invalid_field, the webhook type when the envelope was read)
MALFORMED: dict[str, tuple[bytes | dict[str, Any], str, str, int | None]] = {
    "not json": (b'{"type": 1,', "body", "invalid_json", None),
    "an array": (b"[1, 2]", "body", "not_an_object", None),
    "no type": (_without("type"), "type", "missing_field", None),
    "type as a string": ({**_doc(order_id="1"), "type": "1"}, "type", "invalid_field", None),
    "type as a bool": ({**_doc(order_id="1"), "type": True}, "type", "invalid_field", None),
    "type null": ({**_doc(order_id="1"), "type": None}, "type", "invalid_field", None),
    "no shop_id": (_without("shop_id"), "shop_id", "missing_field", None),
    "shop_id as a number": ({**_doc(order_id="1"), "shop_id": 7494049642642441621}, "shop_id", "invalid_field", None),
    "blank shop_id": ({**_doc(order_id="1"), "shop_id": " "}, "shop_id", "invalid_field", None),
    "timestamp as a float": ({**_doc(order_id="1"), "timestamp": 1.5}, "timestamp", "invalid_field", None),
    "no data": (_without("data"), "data", "missing_field", None),
    "data a list": ({**_doc(), "data": []}, "data", "invalid_field", None),
    "notification id a number": ({**_doc(order_id="1"), "tts_notification_id": 5}, "tts_notification_id",
                                 "invalid_field", None),
    "order id a list": (_doc(order_id=["1"]), "data.order_id", "invalid_field", None),
    "order id too long": (_doc(order_id="1" * 129), "data.order_id", "invalid_field", None),
    "status change without order": (_doc(order_status="UNPAID"), "data.order_id", "missing_field", 1),
    "status change, empty order id": (_doc(order_id=""), "data.order_id", "invalid_field", 1),
    "status a number": (_doc(order_id="1", order_status=100), "data.order_status", "invalid_field", 1),
    "update_time a bool": (_doc(order_id="1", update_time=True), "data.update_time", "invalid_field", 1),
    "update_time a word": (_doc(order_id="1", update_time="soon"), "data.update_time", "invalid_field", 1),
    "update_time a float": (_doc(3, order_id="1", update_time=1.5), "data.update_time", "invalid_field", 3),
    "address change without order": (_doc(3), "data.order_id", "missing_field", 3),
    "package update without list": (_doc(4, sc_type="SPLIT"), "data.package_list", "missing_field", 4),
    "package list a string": (_doc(4, package_list="p1"), "data.package_list", "invalid_field", 4),
    "package not an object": (_doc(4, package_list=["p1"]), "data.package_list[0]", "invalid_field", 4),
    "package without orders": (_doc(4, package_list=[{"package_id": "p1"}]), "data.package_list[0].order_id_list",
                               "missing_field", 4),
    "package order id empty": (_doc(4, package_list=[{"package_id": "p1", "order_id_list": ["a", ""]}]),
                               "data.package_list[0].order_id_list[1]", "invalid_field", 4),
    "product change without product": (_doc(16), "data.product_id", "missing_field", 16),
    "product id a bool": (_doc(16, product_id=True), "data.product_id", "invalid_field", 16),
    "product id a float": (b'{"type":16,"shop_id":"1","timestamp":1,"data":{"product_id":1.5e20}}',
                           "data.product_id", "invalid_field", 16),
    "audit event a number": (_doc(5, product_id="1", status=3), "data.status", "invalid_field", 5),
    "inventory alert without sku": (_doc(27, product_id="1"), "data.sku_id", "missing_field", 27),
    "expiration a date": (_doc(7, expiration_time="2026-12-01"), "data.expiration_time", "invalid_field", 7),
    "cancellation without order": (_doc(11, cancel_status="CANCELLATION_REQUEST_PENDING"), "data.order_id",
                                   "missing_field", 11),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_webhook_names_its_field(case: str) -> None:
    body, field, problem, event_type = MALFORMED[case]
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(MalformedPayload) as info:
        parse_webhook(raw)
    assert (info.value.field, info.value.problem, info.value.event_type) == (field, problem, event_type)
    assert str(info.value).startswith(field + " ")


@pytest.mark.parametrize(("data", "order_id"), [
    ({"order_status": "UNPAID"}, None),  # a status change without an order: the consumer's to dead-letter
    ({"order_id": ""}, None),
    ({"order_id": 576}, "576"),
    ({"package_list": "not a list"}, None),
    ({"order_id": "1", "update_time": "soon"}, "1"),
])
def test_the_envelope_alone_leaves_the_data_to_the_consumers(data: dict[str, Any], order_id: str | None) -> None:
    envelope = parse_envelope(orjson.dumps({"type": 1, "shop_id": SHOP, "timestamp": NOW, "data": data}))
    assert (envelope.type, envelope.shop_id, envelope.timestamp, envelope.order_id) == (1, SHOP, NOW, order_id)


def test_data_fields_the_product_does_not_read_are_not_judged() -> None:
    webhook = parse_webhook(_doc(order_id="1", is_on_hold_order="yes", order_status="ON_HOLD", extra={"a": [1]}))
    assert webhook.data == OrderStatusChange("1", "ON_HOLD", None)

"""The topic contract as an AsyncAPI 3.0 document, generated from the topic specs and the JSON Schemas.

`docs/asyncapi.yaml` is this document (`shopsync topics asyncapi > docs/asyncapi.yaml`); a test keeps them equal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.order_checks import CE_TYPE_CHECK
from shared.orders import CE_TYPE_ENRICHED, CE_TYPE_INGESTED, CE_TYPE_SKIPPED, CE_TYPE_WITHDRAWN
from shared.topics import (
    DLQ,
    MAPPINGS,
    OMS_INVENTORY,
    OMS_SHIPMENTS,
    ORDERS_ENRICHED,
    ORDERS_INGESTED,
    ORDERS_SKIPPED,
    STORE_COMMANDS,
    STORE_RESULTS,
    STORES,
    SYNC_RESULTS,
    TIKTOK_CATALOG,
    TIKTOK_WEBHOOKS,
    TOPIC_SPECS,
)

SCHEMAS = Path(__file__).resolve().parent.parent / "shared" / "schemas"

# topic -> (message name, key format, CloudEvents types, producer, consumers)
DOCUMENTED: dict[str, tuple[str, str, list[str], str, list[str]]] = {
    TIKTOK_WEBHOOKS: ("TiktokWebhook", "{shop_id}:{order_id}, or {shop_id} when the event names no order",
                      ["tiktok.shop.<event name in lower snake case>", "tiktok.shop.type_<n>"], "webhook_gateway",
                      ["order_ingest", "audit"]),
    ORDERS_INGESTED: ("IngestedOrder", "{shop_id}:{order_id}", [CE_TYPE_INGESTED, CE_TYPE_WITHDRAWN],
                      "order_ingest", ["mapping", "audit"]),
    ORDERS_SKIPPED: ("SkippedOrder", "{shop_id}:{order_id}", [CE_TYPE_SKIPPED], "order_ingest",
                     ["audit", "operators"]),
    ORDERS_ENRICHED: ("EnrichedOrder", "{shop_id}:{order_id}", [CE_TYPE_ENRICHED, CE_TYPE_WITHDRAWN],
                      "mapping", ["the OMS", "audit"]),
    STORES: ("StoreConnection", "{shop_id}; pending links pending:{state}", ["shopsync.store.<status>"],
             "the stores owner (services/stores), alone", ["order_ingest", "store_sync", "gateway OAuth callback",
                                                           "CLI", "the stores owner"]),
    STORE_COMMANDS: ("StoreCommand", "{shop_id}; pending links pending:{state}",
                     ["shopsync.store.command.<kind>"], "CLI, gateway OAuth callback, token keepers (order_ingest, "
                     "store_sync, CLI), the stores owner (webhooks 6/7, attach_link)", ["the stores owner"]),
    STORE_RESULTS: ("StoreCommandResult", "{command_id}", ["shopsync.store.result.<status>"], "the stores owner",
                    ["whoever sent the command (CLI, gateway OAuth callback, token keepers)", "the stores owner"]),
    MAPPINGS: ("Mapping", "{shop_id}:{seller_sku}", [], "mapping admin API", ["mapping"]),
    DLQ: ("DeadLetter", "the original record's key", [], "every consumer", ["operators (shopsync dlq)", "audit"]),
    OMS_SHIPMENTS: ("OmsShipment", "{shop_id}:{order_id}", [], "the OMS (or `shopsync ship`)", ["store_sync", "audit"]),
    OMS_INVENTORY: ("OmsStockLevel", "{product_code}", [], "the OMS (or `shopsync inventory set`)", ["store_sync"]),
    SYNC_RESULTS: ("SyncResult", "{shop_id}:{order_id} for shipments, {product_code} for inventory",
                   ["shopsync.sync.shipment.<status>", "shopsync.sync.inventory.<status>"], "store_sync",
                   ["the OMS", "audit", "operators (shopsync inventory status)"]),
    TIKTOK_CATALOG: ("CatalogEntry", "{shop_id}:{seller_sku}", ["shopsync.catalog.sku"], "store_sync", ["store_sync"]),
}

# further messages a topic carries: topic -> [(message name, schema file stem, CloudEvents type, producer)]
ALSO_CARRIED: dict[str, list[tuple[str, str, str, str]]] = {
    TIKTOK_WEBHOOKS: [("OrderCheck", "tiktok.webhooks.order-check", CE_TYPE_CHECK,
                       "`shopsync sync` and the ingest's reconciliation")],
}

CE_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "CloudEvents 1.0 Kafka binary content mode attributes, plus shopsync's plain headers.",
    "properties": {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {"type": "string"}, "ce_source": {"type": "string"}, "ce_type": {"type": "string"},
        "ce_time": {"type": "string", "format": "date-time"}, "ce_subject": {"type": "string"},
        "content-type": {"type": "string", "const": "application/json"},
        "traceparent": {"type": "string", "description": "W3C Trace Context, started at the gateway."},
    },
}


def _schema(stem: str) -> dict[str, Any]:
    path = SCHEMAS / f"{stem}.json"
    if not path.exists():
        return {"description": "The original record's bytes, unchanged; DLQ headers say why and where from."}
    schema = json.loads(path.read_text())
    return {k: v for k, v in schema.items() if k not in ("$schema", "$id")}


def asyncapi_document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic, (message, key, ce_types, producer, consumers) in DOCUMENTED.items():
        spec = TOPIC_SPECS[topic]
        channel_id = topic.replace(".", "_")
        config: dict[str, Any] = {"cleanup.policy": [spec.config()["cleanup.policy"]]}
        if spec.retention_ms is not None:
            config["retention.ms"] = spec.retention_ms
        also = ALSO_CARRIED.get(topic, [])
        produced_by = producer + "".join(f"; {name} messages ({ce_type}) by {by}" for name, _, ce_type, by in also)
        channels[channel_id] = {
            "address": topic,
            "description": f"{spec.description} Key: `{key}`. Produced by {produced_by}; consumed by "
                           f"{', '.join(consumers)}. Names carry SHOPSYNC_TOPIC_PREFIX.",
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in [message, *(a[0] for a in also)]},
            "bindings": {"kafka": {"topic": topic, "partitions": 3, "replicas": 1,
                                   "topicConfiguration": config, "bindingVersion": "0.5.0"}},
        }
        headers = dict(CE_HEADERS)
        if ce_types:
            headers = {**CE_HEADERS, "description": CE_HEADERS["description"] + " ce_type: " + ", ".join(ce_types)}
        messages[message] = {
            "name": message, "title": message, "contentType": "application/json",
            "headers": headers if ce_types else {"type": "object"},
            "payload": _schema(topic),
            "bindings": {"kafka": {"key": {"type": "string", "description": key}, "bindingVersion": "0.5.0"}},
        }
        for name, stem, ce_type, _ in also:
            messages[name] = {
                "name": name, "title": name, "contentType": "application/json",
                "headers": {**CE_HEADERS, "description": CE_HEADERS["description"] + " ce_type: " + ce_type},
                "payload": _schema(stem),
                "bindings": {"kafka": {"key": {"type": "string", "description": key}, "bindingVersion": "0.5.0"}},
            }
        operations[f"produce_{channel_id}"] = {"action": "send", "channel": {"$ref": f"#/channels/{channel_id}"},
                                               "summary": f"{producer} publishes to {topic}" + "".join(
                                                   f"; {by} publish {name} messages" for name, _, _, by in also)}
        operations[f"consume_{channel_id}"] = {"action": "receive", "channel": {"$ref": f"#/channels/{channel_id}"},
                                               "summary": f"{', '.join(consumers)} read {topic}"}
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "shopsync topics", "version": "1.0.0",
                 "description": "The Kafka topics shopsync produces and consumes. Every order topic is keyed "
                                "{shop_id}:{order_id} (ordering per order); compacted topics are versioned upserts "
                                "(orders.ingested: order_version; orders.enriched: revision)."},
        "defaultContentType": "application/json",
        "servers": {"local": {"host": "127.0.0.1:9092", "protocol": "kafka",
                              "description": "The project's local broker (`shopsync kafka start`)."}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def asyncapi_yaml() -> str:
    import yaml

    return yaml.safe_dump(asyncapi_document(), sort_keys=False, allow_unicode=True, width=110)

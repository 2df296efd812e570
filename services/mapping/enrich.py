"""Enrichment as a pure function: an ingested order plus the mapping table → the `orders.enriched` content.

Used by the mapping service and by `shopsync replay`. `content_hash` ignores revision, cause and timestamps, so
"emit only when the content changed" compares what the OMS would act on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping as MappingType
from typing import Any, Literal

import orjson

from shared.mappings import Mapping, mapping_key
from shared.orders import WITHDRAWN, IngestedOrder

Cause = Literal["order_update", "mapping_change", "replay"]
CAUSES: tuple[Cause, ...] = ("order_update", "mapping_change", "replay")
VOLATILE = ("revision", "cause", "enriched_at", "ingested_at", "mapping_versions")


def line_mapping(shop_id: str, seller_sku: str,
                 mappings: MappingType[str, Mapping]) -> tuple[str | None, str, int | None]:
    """(product_code, mapping_status, mapping version) for one seller SKU."""
    if not seller_sku:
        return None, "missing_seller_sku", None
    found = mappings.get(mapping_key(shop_id, seller_sku))
    if found is None:
        return None, "unmapped", None
    return found.product_code, "mapped", found.version


def enrich(order: IngestedOrder, mappings: MappingType[str, Mapping]) -> dict[str, Any]:
    """The enriched content (without revision/cause/enriched_at, which the caller adds)."""
    doc = order.to_dict()
    used: dict[str, int] = {}
    lines = []
    for line in doc["lines"]:
        code, status, version = line_mapping(order.shop_id, line["seller_sku"], mappings)
        line["product_code"] = code
        line["mapping_status"] = status
        if status == "missing_seller_sku":
            line["mapping_note"] = (f'TikTok sent no seller SKU for "{line["product_name"]}" ({line["sku_name"]}, '
                                    f'SKU ID {line["sku_id"]}): fill in the seller SKU on TikTok Shop, then map it.')
        if version is not None:
            used[line["seller_sku"]] = version
        lines.append(line)
    items = []
    for qty in doc["sku_quantities"]:
        code, status, _ = line_mapping(order.shop_id, qty["seller_sku"], mappings)
        items.append({**qty, "product_code": code, "mapping_status": status})
    doc["lines"] = lines
    doc["items"] = items
    doc["mapping_versions"] = used
    if order.lifecycle == WITHDRAWN:
        doc["mapping_state"] = "withdrawn"
    else:
        doc["mapping_state"] = "complete" if all(i["mapping_status"] == "mapped" for i in items) and items \
            else "incomplete"
    return doc


def content_hash(content: MappingType[str, Any]) -> str:
    """A stable hash of the content the OMS acts on (volatile fields excluded)."""
    stable = dict(content)
    for key in VOLATILE:
        stable.pop(key, None)
    return hashlib.blake2b(orjson.dumps(stable, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


def seller_skus(order: IngestedOrder) -> set[str]:
    """The non-empty seller SKUs an order's lines carry."""
    return {line.seller_sku for line in order.lines if line.seller_sku}

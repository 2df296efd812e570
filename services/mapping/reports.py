"""What the admin API computes over the mapping table and the open orders: pure functions, plain data in and out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from collections.abc import Mapping as MappingType
from dataclasses import dataclass, field

from services.mapping.enrich import content_hash, enrich, line_mapping
from shared.mappings import Mapping, mapping_key, split_mapping_key
from shared.orders import IngestedOrder

SAMPLE_ORDERS = 5


@dataclass(slots=True)
class UnmappedSku:
    """A seller SKU (or a missing one) that open orders wait on, with a few of those orders as examples."""

    shop_id: str
    seller_sku: str
    mapping_status: str
    product_name: str
    sku_id: str
    orders_waiting: int = 0
    order_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ChangePreview:
    mapping_key: str
    open_orders_with_sku: int
    would_reemit: int


def mappings_of_shop(mappings: MappingType[str, Mapping], shop_id: str | None = None) -> list[tuple[str, Mapping]]:
    """The (key, mapping) pairs of one shop, or of every shop when `shop_id` is None, sorted by key."""
    return [(key, mapping) for key, mapping in sorted(mappings.items())
            if shop_id is None or split_mapping_key(key)[0] == shop_id]


def next_mapping(mappings: MappingType[str, Mapping], key: str, product_code: str, updated_at: str,
                 updated_by: str) -> Mapping:
    """The mapping that replaces `key`'s current one: its version is one more (1 for a new key)."""
    current = mappings.get(key)
    return Mapping(product_code, updated_at, updated_by, current.version + 1 if current else 1)


def unmapped_report(orders: Iterable[IngestedOrder], mappings: MappingType[str, Mapping],
                    shop_id: str | None = None, sample: int = SAMPLE_ORDERS) -> list[UnmappedSku]:
    """Per (shop, seller SKU, status), the open orders whose lines are not mapped, most waited-on first.

    Product name and SKU ID come from the first line seen; at most `sample` order IDs are kept as examples.
    """
    waiting: dict[tuple[str, str, str], UnmappedSku] = {}
    counted: set[tuple[str, str, str, str]] = set()  # (shop, seller SKU, status, order): an order waits once
    for order in orders:
        if shop_id is not None and order.shop_id != shop_id:
            continue
        for line in order.lines:
            _, status, _ = line_mapping(order.shop_id, line.seller_sku, mappings)
            if status == "mapped":
                continue
            group = (order.shop_id, line.seller_sku, status)
            entry = waiting.setdefault(group, UnmappedSku(
                order.shop_id, line.seller_sku, status, line.product_name, line.sku_id))
            if (*group, order.order_id) not in counted:
                counted.add((*group, order.order_id))
                entry.orders_waiting += 1
                if len(entry.order_ids) < sample:
                    entry.order_ids.append(order.order_id)
    return sorted(waiting.values(), key=lambda e: (-e.orders_waiting, e.shop_id, e.seller_sku))


def preview_change(affected: Sequence[IngestedOrder], mappings: MappingType[str, Mapping], shop_id: str,
                   seller_sku: str, product_code: str | None) -> ChangePreview:
    """How many of the open orders carrying the SKU would be re-emitted if its mapping became `product_code`.

    `product_code` None previews deleting the mapping. Only content changes count, as in the service's emit.
    """
    key = mapping_key(shop_id, seller_sku)
    proposed = dict(mappings)
    if product_code is None:
        proposed.pop(key, None)
    else:
        proposed[key] = next_mapping(mappings, key, product_code, "", "")
    changed = sum(1 for order in affected
                  if content_hash(enrich(order, proposed)) != content_hash(enrich(order, mappings)))
    return ChangePreview(key, len(affected), changed)

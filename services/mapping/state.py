"""What a mapping instance knows about the partitions it owns: open orders, their SKU index, emitted revisions."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from services.mapping.enrich import seller_skus
from shared.orders import ACTIVE, IngestedOrder


@dataclass(slots=True)
class Emitted:
    revision: int
    content_hash: str


class OrderState:
    """Open orders by key and by (shop_id, seller_sku); last emitted revision/hash per key."""

    def __init__(self) -> None:
        self.orders: dict[str, IngestedOrder] = {}
        self.versions: dict[str, int] = {}
        self.partition_of: dict[str, int] = {}
        self.by_sku: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.emitted: dict[str, Emitted] = {}
        self.sku_ids: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)  # shop → sku_id → (seller_sku, name)

    def is_older(self, order: IngestedOrder) -> bool:
        return self.versions.get(order.key, -1) > order.order_version

    def put(self, order: IngestedOrder, partition: int) -> None:
        """Record the newest version of an order; withdrawn orders leave the open index."""
        key = order.key
        self.drop(key)
        self.versions[key] = order.order_version
        self.partition_of[key] = partition
        sku_ids = self.sku_ids[order.shop_id]
        for line in order.lines:
            sku_ids[line.sku_id] = (line.seller_sku, line.product_name)
        if order.lifecycle == ACTIVE:
            self.orders[key] = order
            for sku in seller_skus(order):
                self.by_sku[(order.shop_id, sku)].add(key)

    def drop(self, key: str) -> None:
        order = self.orders.pop(key, None)
        if order is None:
            return
        for sku in seller_skus(order):
            keys = self.by_sku.get((order.shop_id, sku))
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.by_sku[(order.shop_id, sku)]

    def affected(self, shop_id: str, seller_sku: str) -> list[IngestedOrder]:
        return [self.orders[k] for k in sorted(self.by_sku.get((shop_id, seller_sku), ()))]

    def drop_partitions(self, partitions: set[int]) -> None:
        for key in [k for k, p in self.partition_of.items() if p in partitions]:
            self.drop(key)
            self.partition_of.pop(key, None)
            self.versions.pop(key, None)
            self.emitted.pop(key, None)

    def is_known_seller_sku(self, shop_id: str, seller_sku: str) -> bool:
        return any(s == seller_sku for s, _ in self.sku_ids.get(shop_id, {}).values())

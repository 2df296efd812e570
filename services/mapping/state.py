"""What a mapping instance knows about the partitions it owns: open orders, their SKU index, emitted revisions.

The hot, per-record part stays in memory (key → order version, key → last emitted revision and content hash);
the open orders' documents and the (shop, seller SKU) index live in the SQLite store (`StateStore`), written
behind: `sync_docs` before a query, `save` (after the enrichments sent so far are acknowledged) with the checkpoint.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import orjson

from services.mapping.enrich import seller_skus
from services.mapping.store import Batch, Checkpoint, StateStore, key_hash, sku_hash
from shared.orders import ACTIVE, IngestedOrder


@dataclass(slots=True)
class Emitted:
    revision: int
    content_hash: str


class EmittedIndex(dict[str, Emitted]):
    """key → the last emitted revision and content hash; remembers the keys set since the last `save`."""

    def __init__(self) -> None:
        super().__init__()
        self.changed: set[str] = set()

    def __setitem__(self, key: str, value: Emitted) -> None:
        super().__setitem__(key, value)
        self.changed.add(key)


class OrderState:
    """Open orders by key and by (shop_id, seller_sku); last emitted revision/hash per key.

    `store` defaults to an in-memory SQLite store (a service without a state directory, tests)."""

    def __init__(self, store: StateStore | None = None) -> None:
        self.store = store or StateStore.open(None)
        self.versions: dict[str, int] = {}
        self.partition_of: dict[str, int] = {}
        self.emitted = EmittedIndex()
        self.sku_ids: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)  # shop → sku_id → (seller_sku, name)
        self.held: set[int] = set()  # partitions whose orders this state holds
        self.orders = OpenOrders(self)
        self._puts: dict[str, IngestedOrder] = {}  # orders put since their documents were last written
        self._changed: set[str] = set()  # keys whose version changed since the last save
        self._sku_names: list[tuple[str, str, str, str]] = []
        self._sku_names_loaded = False

    def is_older(self, order: IngestedOrder) -> bool:
        return self.versions.get(order.key, -1) > order.order_version

    def put(self, order: IngestedOrder, partition: int) -> None:
        """Record the newest version of an order; withdrawn orders leave the open index."""
        key = order.key
        self.versions[key] = order.order_version
        self.partition_of[key] = partition
        self.held.add(partition)
        self._puts[key] = order
        self._changed.add(key)
        sku_ids = self.sku_ids[order.shop_id]
        for line in order.lines:
            named = (line.seller_sku, line.product_name)
            if sku_ids.get(line.sku_id) != named:
                sku_ids[line.sku_id] = named
                self._sku_names.append((order.shop_id, line.sku_id, *named))

    def merge_emitted(self, key: str, partition: int, seen: Emitted) -> bool:
        """Keep `seen` (read from `orders.enriched`) if it is newer than what is known; True if kept."""
        last = self.emitted.get(key)
        if last is not None and last.revision >= seen.revision:
            return False
        self.emitted[key] = seen
        self.partition_of.setdefault(key, partition)
        return True

    def affected(self, shop_id: str, seller_sku: str) -> list[IngestedOrder]:
        """The open orders of the held partitions that carry (shop, seller SKU), by key."""
        self.sync_docs()
        found = []
        for key, partition, doc in self.store.docs_by_sku(shop_id, seller_sku):
            if partition not in self.held or self.partition_of.get(key) != partition:
                continue
            order = IngestedOrder.from_dict(orjson.loads(doc))
            if order.shop_id == shop_id and seller_sku in seller_skus(order):
                found.append(order)
        return sorted(found, key=lambda o: o.key)

    def open_orders(self, keys: Iterable[str]) -> list[tuple[IngestedOrder, int]]:
        """(order, partition) for those of `keys` that are open orders of the held partitions."""
        self.sync_docs()
        return [(IngestedOrder.from_dict(orjson.loads(doc)), partition)
                for key, partition, doc in self.store.docs(keys) if partition in self.held]

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget the partitions in memory (their rows stay in the store for a later restore: `save` first)."""
        for key in [k for k, p in self.partition_of.items() if p in partitions]:
            self.partition_of.pop(key, None)
            self.versions.pop(key, None)
            dict.pop(self.emitted, key, None)
            self.emitted.changed.discard(key)
            self._changed.discard(key)
            self._puts.pop(key, None)
        self.held -= partitions

    def is_known_seller_sku(self, shop_id: str, seller_sku: str) -> bool:
        return any(s == seller_sku for s, _ in self.sku_ids.get(shop_id, {}).values())

    # ---- the store -------------------------------------------------------------------------------------------
    def load(self, partitions: set[int]) -> int:
        """Load the partitions' versions and emitted revisions from the store (one query); returns the rows."""
        if not self._sku_names_loaded:
            for shop, sku_id, seller_sku, name in self.store.sku_names():
                self.sku_ids[shop].setdefault(sku_id, (seller_sku, name))
            self._sku_names_loaded = True
        versions, partition_of, emitted, rows = self.versions, self.partition_of, self.emitted, 0
        set_emitted = dict.__setitem__  # loaded rows are not changes
        for key, partition, version, revision, digest in self.store.order_rows(partitions):
            partition_of[key] = partition
            if version is not None:
                versions[key] = version
            if revision is not None and digest is not None:
                set_emitted(emitted, key, Emitted(revision, digest))
            rows += 1
        self.held |= partitions
        return rows

    def sync_docs(self) -> None:
        """Write the documents and SKU index of the orders put since the last write (not their emissions)."""
        if self._puts or self._sku_names:
            self.store.write(self._docs_batch())

    def save(self, *, checkpoints: dict[int, Checkpoint] | None = None,
             advance: dict[int, Checkpoint] | None = None, mapping_seen: dict[str, int] | None = None,
             seen_in: set[int] | None = None, full_mapping_seen: bool = False) -> None:
        """Write everything changed since the last save, and the checkpoints, in one transaction (in the store's
        background thread). Call only when every enrichment sent so far is acknowledged (a stored revision must be
        on the topic).

        `checkpoints` sets the partitions' checkpoints (a restore); `advance` moves existing ones forward;
        `mapping_seen` records, for the partitions `seen_in` (default: every held one), the mapping offsets their
        enrichments now reflect (`full_mapping_seen`: that is the whole table)."""
        batch = self._docs_batch()
        emitted, versions, partition_of = self.emitted, self.versions, self.partition_of
        for key in self._changed | emitted.changed:
            partition = partition_of.get(key)
            if partition is None:
                continue
            last = emitted.get(key)
            batch.orders.append((key, partition, versions.get(key), last.revision if last else None,
                                 last.content_hash if last else None))
        self._changed.clear()
        emitted.changed.clear()
        seen = {p: mapping_seen for p in (self.held if seen_in is None else seen_in)} \
            if mapping_seen is not None else None
        self.store.submit(batch, checkpoints=checkpoints, advance=advance, mapping_seen=seen,
                          replace_mapping_seen=full_mapping_seen)

    def forget(self, partitions: set[int]) -> None:
        """Delete the partitions' rows and checkpoints from the store (before a full restore rewrites them)."""
        self.store.write(Batch([], [], [], [], [], []), forget=partitions)

    def _docs_batch(self) -> Batch:
        batch = Batch([], [], [], [], [], self._sku_names)
        for key, order in self._puts.items():
            kh = key_hash(key)
            hashes = [(sku_hash(order.shop_id, sku), kh) for sku in seller_skus(order)]
            if order.lifecycle == ACTIVE:
                batch.docs.append((kh, key, self.partition_of[key], orjson.dumps(order.to_dict())))
                batch.skus.extend(hashes)
            else:
                batch.closed.append((kh, key))
                batch.stale_skus.extend(hashes)
        self._puts = {}
        self._sku_names = []
        return batch


class OpenOrders(Mapping[str, IngestedOrder]):
    """The open orders of the held partitions, read from the store (for the admin API and reports)."""

    def __init__(self, state: OrderState) -> None:
        self._state = state

    def __getitem__(self, key: str) -> IngestedOrder:
        found = self._state.open_orders([key])
        if not found:
            raise KeyError(key)
        return found[0][0]

    def __iter__(self) -> Iterator[str]:
        self._state.sync_docs()
        return iter(self._state.store.open_keys(self._state.held))

    def __len__(self) -> int:
        self._state.sync_docs()
        return len(self._state.store.open_keys(self._state.held))

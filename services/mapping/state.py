"""What a mapping instance knows about the partitions it owns: open orders, their SKU index, emitted revisions.

The hot, per-record part stays in memory (key → order version, key → last emitted revision and content hash);
the open orders' documents and the (shop, seller SKU) index live in the SQLite store (`StateStore`), written
behind by `save` (after the enrichments sent so far are acknowledged) with the checkpoint. Queries read the store
plus the orders put since, or still being written (`_unwritten`): they never wait for the writer.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import orjson

from services.mapping.enrich import seller_skus
from services.mapping.store import Batch, Checkpoint, StateStore, key_hash, sku_hash
from shared.orders import ACTIVE, IngestedOrder

LOAD_CHUNK = 50_000
SAVE_CHUNK = 20_000


@dataclass(frozen=True, slots=True)
class Writing:
    """Orders handed to the store's writer and not yet readable from it, indexed by (shop, seller SKU)."""

    written: Future[None]
    puts: dict[str, IngestedOrder]
    by_sku: dict[tuple[str, str], list[str]]


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
        self._puts: dict[str, IngestedOrder] = {}  # orders put since the last save
        self._docs: dict[str, bytes] = {}  # the `orders.ingested` value of those put with it (their stored doc)
        self._writing: list[Writing] = []  # saved, maybe not written yet (oldest first)
        self._changed: set[str] = set()  # keys whose version changed since the last save
        self._sku_names: list[tuple[str, str, str, str]] = []
        self._sku_names_loaded = False

    def is_older(self, order: IngestedOrder) -> bool:
        return self.versions.get(order.key, -1) > order.order_version

    def put(self, order: IngestedOrder, partition: int, doc: bytes | None = None) -> None:
        """Record the newest version of an order; withdrawn orders leave the open index. `doc`: the value `order`
        was decoded from, stored as its document instead of encoding the order again (~4 us a record)."""
        key = order.key
        self.versions[key] = order.order_version
        self.partition_of[key] = partition
        self.held.add(partition)
        self._puts[key] = order
        if doc is None:
            self._docs.pop(key, None)
        else:
            self._docs[key] = doc
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
        """The open orders of the held partitions that carry (shop, seller SKU), by key.

        The orders not yet readable from the store are found through each write's (shop, seller SKU) index, not by
        reading them all: right after a burst the writer may be 100,000 orders behind, and a scan of them per
        mapping change took ~0.4 s."""
        writing, puts = self._pending_writes(), self._puts

        def newest(key: str) -> IngestedOrder | None:  # the newest version the store does not show yet
            if (order := puts.get(key)) is None:
                order = next((w.puts[key] for w in reversed(writing) if key in w.puts), None)
            return order

        found = {}
        for key, partition, doc in self.store.docs_by_sku(shop_id, seller_sku):
            if newest(key) is None and partition in self.held and self.partition_of.get(key) == partition:
                found[key] = IngestedOrder.from_dict(orjson.loads(doc))
        wanted = (shop_id, seller_sku)
        candidates = {key for w in writing for key in w.by_sku.get(wanted, ())}
        candidates.update(key for key, o in puts.items() if o.shop_id == shop_id and seller_sku in seller_skus(o))
        for key in candidates:
            if (order := newest(key)) is not None and self.partition_of.get(key) in self.held:
                found[key] = order
        return sorted((o for o in found.values() if self._is_current(o) and o.shop_id == shop_id
                       and seller_sku in seller_skus(o)), key=lambda o: o.key)

    def open_orders(self, keys: Iterable[str]) -> list[tuple[IngestedOrder, int]]:
        """(order, partition) for those of `keys` that are open orders of the held partitions."""
        unwritten = self._unwritten()
        found = []
        for key in keys:
            order = unwritten.get(key)
            if order is None:
                stored = self.store.doc(key)
                order = IngestedOrder.from_dict(orjson.loads(stored[1])) if stored is not None else None
            if order is not None and self.partition_of.get(key) in self.held and self._is_current(order):
                found.append((order, self.partition_of[key]))
        return found

    def open_keys(self) -> set[str]:
        unwritten = self._unwritten()
        keys = {k for k in self.store.open_keys(self.held) if k not in unwritten and k in self.partition_of}
        return keys | {k for k, o in unwritten.items() if self._is_current(o) and self.partition_of[k] in self.held}

    def _is_current(self, order: IngestedOrder) -> bool:
        """Open, and the version this instance holds (not an older document another instance left)."""
        return order.lifecycle == ACTIVE and self.versions.get(order.key) == order.order_version

    def _pending_writes(self) -> list[Writing]:
        """The writes whose documents the store's readers do not see yet (oldest first)."""
        if self.store.failed is None:  # a failed store never writes them: they stay here
            self._writing = [w for w in self._writing if not w.written.done()]
        return self._writing

    def _unwritten(self) -> dict[str, IngestedOrder]:
        """Orders put whose documents the store's readers do not see yet (newest last)."""
        merged: dict[str, IngestedOrder] = {}
        for writing in self._pending_writes():
            merged.update(writing.puts)
        merged.update(self._puts)
        return merged

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget the partitions in memory (their rows stay in the store for a later restore: `save` first)."""
        for key in [k for k, p in self.partition_of.items() if p in partitions]:
            self.partition_of.pop(key, None)
            self.versions.pop(key, None)
            dict.pop(self.emitted, key, None)
            self.emitted.changed.discard(key)
            self._changed.discard(key)
        self.held -= partitions

    def is_known_seller_sku(self, shop_id: str, seller_sku: str) -> bool:
        return any(s == seller_sku for s, _ in self.sku_ids.get(shop_id, {}).values())

    # ---- the store -------------------------------------------------------------------------------------------
    async def load(self, partitions: set[int]) -> int:
        """Load the partitions' versions and emitted revisions from the store (one query, read in chunks that
        let the event loop run: a million rows take seconds, longer than a consumer may miss heartbeats)."""
        if not self._sku_names_loaded:
            for shop, sku_id, seller_sku, name in self.store.sku_names():
                self.sku_ids[shop].setdefault(sku_id, (seller_sku, name))
            self._sku_names_loaded = True
        versions, partition_of, emitted, rows = self.versions, self.partition_of, self.emitted, 0
        set_emitted = dict.__setitem__  # loaded rows are not changes
        cursor = self.store.order_rows(partitions)
        while chunk := cursor.fetchmany(LOAD_CHUNK):
            for key, partition, version, revision, digest in chunk:
                partition_of[key] = partition
                if version is not None:
                    versions[key] = version
                if revision is not None and digest is not None:
                    set_emitted(emitted, key, Emitted(revision, digest))
            rows += len(chunk)
            await asyncio.sleep(0)
        self.held |= partitions
        return rows

    def save(self, *, checkpoints: dict[int, Checkpoint] | None = None,
             advance: dict[int, Checkpoint] | None = None, mapping_seen: dict[str, int] | None = None,
             seen_in: set[int] | None = None, full_mapping_seen: bool = False) -> None:
        """Write everything changed since the last save, and the checkpoints, in one transaction (in the store's
        background thread). Call only when every enrichment sent so far is acknowledged (a stored revision must be
        on the topic).

        `checkpoints` sets the partitions' checkpoints (a restore); `advance` moves existing ones forward;
        `mapping_seen` records, for the partitions `seen_in` (default: every held one), the mapping offsets their
        enrichments now reflect (`full_mapping_seen`: that is the whole table)."""
        seen = {p: mapping_seen for p in (self.held if seen_in is None else seen_in)} \
            if mapping_seen is not None else None
        self._submit(self._puts.keys() | self._changed | self.emitted.changed, checkpoints=checkpoints,
                     advance=advance, mapping_seen=seen, replace_mapping_seen=full_mapping_seen)

    async def save_gradually(self, **options: Any) -> None:
        """`save` in transactions of SAVE_CHUNK orders, the checkpoints with the last, letting the event loop run
        between them (building a million documents takes longer than a consumer may miss heartbeats). Rows ahead
        of their checkpoint are fine: a restore applies the tail after it again, and rows never go back."""
        pending = list(self._puts.keys() | self._changed | self.emitted.changed)
        for start in range(0, len(pending) - SAVE_CHUNK, SAVE_CHUNK):
            self._submit(pending[start:start + SAVE_CHUNK])
            await asyncio.sleep(0)
        self.save(**options)

    def _submit(self, keys: Iterable[str], **options: Any) -> None:
        batch = Batch([], [], [], [], [], self._sku_names)
        self._sku_names = []
        emitted, versions, partition_of, puts = self.emitted, self.versions, self.partition_of, {}
        by_sku: dict[tuple[str, str], list[str]] = {}
        for key in keys:
            if (partition := partition_of.get(key)) is None:
                continue  # dropped with its partition
            if (order := self._puts.pop(key, None)) is not None:
                puts[key] = order
                skus = seller_skus(order)
                for sku in skus:
                    by_sku.setdefault((order.shop_id, sku), []).append(key)
                self._add_document(batch, key, partition, order, skus, self._docs.pop(key, None))
            last = emitted.get(key)
            batch.orders.append((key, partition, versions.get(key), last.revision if last else None,
                                 last.content_hash if last else None))
            self._changed.discard(key)
            emitted.changed.discard(key)
        written = self.store.submit(batch, **options)
        if puts:
            self._writing.append(Writing(written, puts, by_sku))

    def forget(self, partitions: set[int]) -> None:
        """Delete the partitions' rows and checkpoints from the store (before a full restore rewrites them)."""
        self.store.write(Batch([], [], [], [], [], []), forget=partitions)

    @staticmethod
    def _add_document(batch: Batch, key: str, partition: int, order: IngestedOrder, skus: set[str],
                      doc: bytes | None) -> None:
        kh = key_hash(key)
        hashes = [(sku_hash(order.shop_id, sku), kh) for sku in skus]
        if order.lifecycle == ACTIVE:
            batch.docs.append((kh, key, partition, order.order_version,
                               doc if doc is not None else orjson.dumps(order.to_dict())))
            batch.skus.extend(hashes)
        else:
            batch.closed.append((kh, key, order.order_version))
            batch.stale_skus.extend(hashes)


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
        return iter(sorted(self._state.open_keys()))

    def __len__(self) -> int:
        return len(self._state.open_keys())

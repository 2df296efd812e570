"""The mapping service's local state store: SQLite, one file per consumer group.

It holds, per `orders.ingested` partition, what `OrderState` needs (order versions, last emitted revision and
content hash, the open orders' documents and their (shop, seller SKU) index) and a checkpoint: the offsets of
`orders.ingested` and `orders.enriched` up to which the rows reflect the topics, plus, per mapping key, the offset
of the `shopsync.mappings` record the stored enrichments reflect. Rows and checkpoint are written in one
transaction, so a restart restores from the store and reads only the topics' tails after the checkpoint.

SQLite because it ships with Python (no wheel to maintain), is crash-safe (WAL), and does what the restore needs:
a bulk load of small rows (~2 µs/row) and indexed look-ups of the few orders a mapping change affects. Its cost
is the commit (random-key B-tree pages written to the WAL, and fsync at WAL checkpoints: tens of ms per thousand
orders here), so the consumed batches' rows are written by one background thread (`submit`), in order; reads wait
for the writes submitted before them. No transaction spans an `await`: two services in one process can share a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import sqlite3
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from shared.logging import get_logger

log = get_logger("mapping.store")
SCHEMA_VERSION = "3"  # 3: `docs` is a rowid table (a store of version 2 is replaced: one full restore)
MAX_SLOTS = 16  # store files per directory: one per instance running on the host (or sharing the volume)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    # every order seen: the newest version, the last emitted revision and content hash
    "CREATE TABLE IF NOT EXISTS orders(key TEXT PRIMARY KEY, partition INTEGER NOT NULL, version INTEGER, "
    "revision INTEGER, hash TEXT) WITHOUT ROWID",
    # open orders only: the `orders.ingested` document, by a 64-bit hash of the key (`kh`) then the key itself.
    # A rowid table: WITHOUT ROWID keeps the ~1 KB documents in the key's B-tree, where an upsert costs ~3x the CPU
    # (22-28 against 8 us a row, measured; SQLite advises WITHOUT ROWID only for small rows)
    "CREATE TABLE IF NOT EXISTS docs(kh INTEGER NOT NULL, key TEXT NOT NULL, partition INTEGER NOT NULL, "
    "version INTEGER NOT NULL, doc BLOB NOT NULL, PRIMARY KEY(kh, key))",
    # (shop, seller SKU) hash → order key hash; may hold stale pairs, which `affected` filters out
    "CREATE TABLE IF NOT EXISTS skus(h INTEGER NOT NULL, kh INTEGER NOT NULL, PRIMARY KEY(h, kh)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS sku_names(shop TEXT NOT NULL, sku_id TEXT NOT NULL, seller_sku TEXT NOT NULL, "
    "name TEXT NOT NULL, PRIMARY KEY(shop, sku_id)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS checkpoints(partition INTEGER PRIMARY KEY, ingested INTEGER NOT NULL, "
    "enriched INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS mapping_seen(partition INTEGER NOT NULL, key TEXT NOT NULL, "
    "offset INTEGER NOT NULL, PRIMARY KEY(partition, key)) WITHOUT ROWID",
)


_NEWER_REVISION = "excluded.revision IS NOT NULL AND (orders.revision IS NULL OR excluded.revision >= orders.revision)"
_UPSERT_ORDER = (
    "INSERT INTO orders VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET partition = excluded.partition, "
    "version = CASE WHEN orders.version IS NULL OR excluded.version >= orders.version THEN excluded.version "
    "ELSE orders.version END, "
    f"revision = CASE WHEN {_NEWER_REVISION} THEN excluded.revision ELSE orders.revision END, "
    f"hash = CASE WHEN {_NEWER_REVISION} THEN excluded.hash ELSE orders.hash END"
)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Next offsets of `orders.ingested` and `orders.enriched` the store does not reflect yet (one partition)."""

    ingested: int
    enriched: int


@dataclass(slots=True)
class Batch:
    """Rows to write in one transaction (built by `OrderState`)."""

    orders: list[tuple[str, int, int | None, int | None, str | None]]  # key, partition, version, revision, hash
    docs: list[tuple[int, str, int, int, bytes]]  # kh, key, partition, version, doc
    closed: list[tuple[int, str, int]]  # kh, key, version of orders no longer open
    skus: list[tuple[int, int]]  # h, kh
    stale_skus: list[tuple[int, int]]
    sku_names: list[tuple[str, str, str, str]]


def key_hash(key: str) -> int:
    """A stable signed 64-bit hash of an order key (SQLite integers are signed)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def sku_hash(shop_id: str, seller_sku: str) -> int:
    """A stable hash of (shop, seller SKU); collisions only add candidates that `affected` filters out."""
    return zlib.crc32(f"{shop_id}\x00{seller_sku}".encode())


class StateStore:
    """Synchronous SQLite access; `StateStore.open(None)` is an in-memory store (tests, one-off services)."""

    def __init__(self, connection: sqlite3.Connection, path: Path | None) -> None:
        self.db = connection  # the writer's (the background thread, and `write`)
        # reads on their own connection see the last commit and never wait for the writer (WAL); an in-memory
        # store has one connection
        self.reader = connection if path is None else sqlite3.connect(path, isolation_level=None,
                                                                     check_same_thread=False)
        self.path = path
        self.failed: sqlite3.Error | None = None  # a write failed: later ones are skipped (the store stays behind)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="state-store")
        self._last: Future[None] | None = None
        self._lock: IO[bytes] | None = None  # held while open: no other store uses this file (`open_own`)

    @classmethod
    def open_own(cls, directory: Path, stem: str) -> StateStore:
        """The first store `directory/<stem>[.<n>].sqlite3` that no other open store holds (an exclusive `flock` on
        its `.lock` file, released by `close` or the process's end), so instances sharing a directory never share a
        file. Any store is a valid start: its checkpoint only decides how much of the topics a restore reads."""
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # e.g. a read-only file system without a state volume: restores stay full
            log.warning("state_store_unavailable", path=str(directory), error=str(exc))
            return cls._connect(None)
        for slot in range(MAX_SLOTS):
            path = directory / (f"{stem}.sqlite3" if slot == 0 else f"{stem}.{slot}.sqlite3")
            lock = path.with_name(f"{path.name}.lock").open("a+b")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            try:
                store = cls.open(path)
            except BaseException:
                lock.close()
                raise
            store._lock = lock
            return store
        log.warning("state_store_unavailable", path=str(directory), error=f"all {MAX_SLOTS} store files are in use")
        return cls._connect(None)

    @classmethod
    def open(cls, path: Path | None) -> StateStore:
        """Open (or create) the store at `path`; a corrupt or foreign file is replaced by a new one, a directory
        that cannot be created gives an in-memory store (every restore is then a full one)."""
        if path is None:
            return cls._connect(None)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # e.g. a read-only file system without a state volume: restores stay full
            log.warning("state_store_unavailable", path=str(path), error=str(exc))
            return cls._connect(None)
        try:
            return cls._connect(path)
        except sqlite3.DatabaseError as exc:
            log.warning("state_store_unusable", path=str(path), error=str(exc))
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return cls._connect(path)

    @classmethod
    def _connect(cls, path: Path | None) -> StateStore:
        db = sqlite3.connect(":memory:" if path is None else path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA busy_timeout = 10000")
            if path is not None:
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: consistent after a crash
            db.execute("PRAGMA cache_size = -65536")
            version = cls._schema_version(db)
            if version not in (None, SCHEMA_VERSION):
                raise sqlite3.DatabaseError(f"schema version {version}, expected {SCHEMA_VERSION}")
            with _transaction(db):
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        except BaseException:
            db.close()
            raise
        return cls(db, path)

    @staticmethod
    def _schema_version(db: sqlite3.Connection) -> str | None:
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone() is None:
            return None
        row = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        self.wait()
        self._writer.shutdown()
        if self.reader is not self.db:
            self.reader.close()
        self.db.close()
        if self._lock is not None:
            self._lock.close()  # releases the flock: the next instance here may use this file
            self._lock = None

    def submit(self, batch: Batch, **options: Any) -> Future[None]:
        """`write` in the background thread, after the writes submitted before; returns at once (the future of
        the write: once done, the reads see it)."""
        self._last = self._writer.submit(self._write_in_background, batch, options)
        return self._last

    def compact(self) -> Future[None]:
        """Fold the write-ahead log into the database file (after a big write, at shutdown): the next start reads
        the file, not a WAL of gigabytes."""
        self._last = self._writer.submit(self._truncate_wal)
        return self._last

    def _truncate_wal(self) -> None:
        if self.path is not None and self.failed is None:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def wait(self) -> None:
        """Block until every submitted write is done (reads call it: they see what was submitted before them)."""
        if self._last is not None:
            self._last.result()

    def _write_in_background(self, batch: Batch, options: dict[str, Any]) -> None:
        if self.failed is not None:
            return  # never a checkpoint past rows that were not written
        try:
            self._write(batch, **options)
        except sqlite3.Error as exc:
            self.failed = exc
            log.error("state_store_write_failed", path=str(self.path), error=str(exc))

    # ---- reads -----------------------------------------------------------------------------------------------
    def checkpoints(self, partitions: Iterable[int]) -> dict[int, Checkpoint]:
        self.wait()
        wanted = sorted(partitions)
        rows = self.reader.execute(f"SELECT partition, ingested, enriched FROM checkpoints WHERE partition IN "
                               f"({_marks(wanted)})", wanted)
        return {p: Checkpoint(i, e) for p, i, e in rows}

    def order_rows(self, partitions: Iterable[int]) -> sqlite3.Cursor:
        """Rows (key, partition, version, revision, hash) of every order of `partitions`."""
        self.wait()
        wanted = sorted(partitions)
        return self.reader.execute(f"SELECT key, partition, version, revision, hash FROM orders WHERE partition "
                                   f"IN ({_marks(wanted)})", wanted)

    def sku_names(self) -> Iterator[tuple[str, str, str, str]]:
        self.wait()
        return iter(self.reader.execute("SELECT shop, sku_id, seller_sku, name FROM sku_names"))

    def doc(self, key: str) -> tuple[int, bytes] | None:
        """(partition, document) of an open order."""
        row = self.reader.execute("SELECT partition, doc FROM docs WHERE kh = ? AND key = ?",
                              (key_hash(key), key)).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def docs(self, keys: Iterable[str]) -> Iterator[tuple[str, int, bytes]]:
        """(key, partition, document) of those of `keys` that are open orders."""
        for key in keys:
            found = self.doc(key)
            if found is not None:
                yield key, found[0], found[1]

    def docs_by_sku(self, shop_id: str, seller_sku: str) -> Iterator[tuple[str, int, bytes]]:
        """(key, partition, document) of open orders that may carry (shop, seller SKU): check the document."""
        return iter(self.reader.execute("SELECT d.key, d.partition, d.doc FROM skus s JOIN docs d ON d.kh = s.kh "
                                    "WHERE s.h = ?", (sku_hash(shop_id, seller_sku),)))

    def open_keys(self, partitions: Iterable[int]) -> list[str]:
        wanted = sorted(partitions)
        return [k for (k,) in self.reader.execute(f"SELECT key FROM docs WHERE partition IN ({_marks(wanted)})",
                                              wanted)]

    def keys_of(self, partitions: Iterable[int]) -> list[str]:
        wanted = sorted(partitions)
        return [k for (k,) in self.reader.execute(f"SELECT key FROM orders WHERE partition IN ({_marks(wanted)})",
                                              wanted)]

    def mapping_seen(self, partition: int) -> dict[str, int]:
        """Mapping key → offset of the mapping record the partition's stored enrichments reflect."""
        self.wait()
        return dict(self.reader.execute("SELECT key, offset FROM mapping_seen WHERE partition = ?", (partition,)))

    # ---- writes ----------------------------------------------------------------------------------------------
    def write(self, batch: Batch, *, checkpoints: dict[int, Checkpoint] | None = None,
              advance: dict[int, Checkpoint] | None = None, mapping_seen: dict[int, dict[str, int]] | None = None,
              replace_mapping_seen: bool = False, forget: Iterable[int] = ()) -> None:
        """`submit` and wait for it."""
        self.submit(batch, checkpoints=checkpoints, advance=advance, mapping_seen=mapping_seen,
                    replace_mapping_seen=replace_mapping_seen, forget=forget)
        self.wait()

    def _write(self, batch: Batch, *, checkpoints: dict[int, Checkpoint] | None = None,
               advance: dict[int, Checkpoint] | None = None, mapping_seen: dict[int, dict[str, int]] | None = None,
               replace_mapping_seen: bool = False, forget: Iterable[int] = ()) -> None:
        """Write `batch` and the checkpoints in one transaction. `checkpoints` sets them (a restore), `advance`
        moves existing ones forward (a partition that was never restored gets none). `forget` deletes the
        partitions' rows first; `replace_mapping_seen` replaces the partitions' mapping offsets, not upserts."""
        db = self.db
        with _transaction(db):
            for partition in forget:
                self._forget(partition)
            # rows never go back (a version, a revision): a late write from another instance sharing the file, or
            # one re-applied from a tail, cannot undo a newer one
            if batch.closed:
                db.executemany("DELETE FROM docs WHERE kh = ? AND key = ? AND version <= ?", batch.closed)
            if batch.docs:
                db.executemany("INSERT INTO docs VALUES (?, ?, ?, ?, ?) ON CONFLICT(kh, key) DO UPDATE SET "
                               "partition = excluded.partition, version = excluded.version, doc = excluded.doc "
                               "WHERE excluded.version >= docs.version", batch.docs)
            if batch.stale_skus:
                db.executemany("DELETE FROM skus WHERE h = ? AND kh = ?", batch.stale_skus)
            if batch.skus:
                db.executemany("INSERT OR IGNORE INTO skus VALUES (?, ?)", batch.skus)
            if batch.sku_names:
                db.executemany("INSERT OR REPLACE INTO sku_names VALUES (?, ?, ?, ?)", batch.sku_names)
            if batch.orders:
                db.executemany(_UPSERT_ORDER, batch.orders)
            for partition, checkpoint in (checkpoints or {}).items():
                db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)",
                           (partition, checkpoint.ingested, checkpoint.enriched))
            for partition, checkpoint in (advance or {}).items():
                db.execute("UPDATE checkpoints SET ingested = max(ingested, ?), enriched = max(enriched, ?) "
                           "WHERE partition = ?", (checkpoint.ingested, checkpoint.enriched, partition))
            for partition, seen in (mapping_seen or {}).items():
                if replace_mapping_seen:
                    db.execute("DELETE FROM mapping_seen WHERE partition = ?", (partition,))
                db.executemany("INSERT OR REPLACE INTO mapping_seen VALUES (?, ?, ?)",
                               [(partition, key, offset) for key, offset in seen.items()])

    def _forget(self, partition: int) -> None:
        db = self.db
        db.execute("DELETE FROM checkpoints WHERE partition = ?", (partition,))
        db.execute("DELETE FROM mapping_seen WHERE partition = ?", (partition,))
        db.execute("DELETE FROM orders WHERE partition = ?", (partition,))
        # sku pairs of the partition's orders become stale (no doc): `affected` ignores them
        db.execute("DELETE FROM docs WHERE partition = ?", (partition,))


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error) on an autocommit connection."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _marks(values: list[int]) -> str:
    return ",".join("?" * len(values)) or "NULL"

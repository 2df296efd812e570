"""The audit index: SQLite (WAL), one row per timeline entry, looked up by order id (and shop)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from services.audit.timeline import Entry

SCHEMA = """
CREATE TABLE IF NOT EXISTS timeline (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
    shop_id TEXT NOT NULL, order_id TEXT NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL,
    PRIMARY KEY (topic, partition, offset)
);
CREATE INDEX IF NOT EXISTS timeline_order ON timeline (order_id, shop_id);
"""


class AuditStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def add(self, rows: list[tuple[str, int, int, Entry]]) -> None:
        """Insert entries (idempotent per topic/partition/offset) in one transaction."""
        with self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO timeline VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(topic, partition, offset, e.shop_id, e.order_id, e.at, e.kind, orjson.dumps(e.detail).decode())
                 for topic, partition, offset, e in rows])

    def timeline(self, order_id: str, shop_id: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT shop_id, order_id, at, kind, detail, topic FROM timeline WHERE order_id = ?"
        args: list[str] = [order_id]
        if shop_id:
            query += " AND shop_id = ?"
            args.append(shop_id)
        rows = self._db.execute(query + " ORDER BY at, topic, offset", args).fetchall()
        return [{"shop_id": r[0], "order_id": r[1], "at": r[2], "kind": r[3], "detail": orjson.loads(r[4]),
                 "topic": r[5]} for r in rows]

    def skipped_since(self, since: str) -> list[dict[str, Any]]:
        """Orders whose latest decision (accepted, withdrawn, skipped, dead letter) is a skip at or after `since`
        (RFC 3339), with its reasons: the orders left out, for "Why no orders?"."""
        rows = self._db.execute(
            "SELECT shop_id, order_id, at, kind, detail FROM timeline WHERE at >= ? AND kind IN "
            "('accepted', 'withdrawn', 'skipped', 'dead_letter') ORDER BY at, topic, offset", [since]).fetchall()
        latest: dict[tuple[str, str], tuple[str, str, str]] = {}
        for shop_id, order_id, at, kind, detail in rows:
            latest[(shop_id, order_id)] = (at, kind, detail)
        return [{"shop_id": shop_id, "order_id": order_id, "at": at,
                 "reasons": orjson.loads(detail).get("reasons") or []}
                for (shop_id, order_id), (at, kind, detail) in latest.items() if kind == "skipped"]

    def close(self) -> None:
        self._db.close()

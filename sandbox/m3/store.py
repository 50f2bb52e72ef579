"""SQLite state of the sandbox M3, shared by every app instance and process on one folder.

M3 records are kept as their MI field dictionaries (JSON) next to the key columns that are
searched, so a handler reads and writes the same field names the wire carries. Every MI
transaction runs in one ``BEGIN IMMEDIATE`` transaction under a per-database lock: WAL lets
readers of another process proceed, the lock serialises writers of this process.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DB_NAME = "m3.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS customers (cuno TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (itno TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS prices (itno TEXT, cucd TEXT, sapr TEXT NOT NULL, PRIMARY KEY (itno, cucd));
CREATE TABLE IF NOT EXISTS warehouses (whlo TEXT PRIMARY KEY, faci TEXT NOT NULL, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS order_types (ortp TEXT PRIMARY KEY, whlo TEXT NOT NULL, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS balances (whlo TEXT, itno TEXT, stqt INTEGER NOT NULL, alqt INTEGER NOT NULL,
                                     PRIMARY KEY (whlo, itno));
CREATE TABLE IF NOT EXISTS orders (orno TEXT PRIMARY KEY, kind TEXT NOT NULL, cuno TEXT NOT NULL,
                                   cuor TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS orders_cuno ON orders (cuno);
CREATE TABLE IF NOT EXISTS order_lines (orno TEXT, ponr INTEGER, data TEXT NOT NULL, PRIMARY KEY (orno, ponr));
CREATE TABLE IF NOT EXISTS order_addresses (orno TEXT, adrt TEXT, data TEXT NOT NULL, PRIMARY KEY (orno, adrt));
CREATE TABLE IF NOT EXISTS deliveries (dlix TEXT PRIMARY KEY, orno TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS invoices (divi TEXT, yea4 TEXT, ivno TEXT, orno TEXT NOT NULL, ivdt TEXT NOT NULL,
                                     data TEXT NOT NULL, PRIMARY KEY (divi, yea4, ivno));
CREATE TABLE IF NOT EXISTS vouchers (divi TEXT, yea4 TEXT, vono TEXT, acdt TEXT NOT NULL, data TEXT NOT NULL,
                                     PRIMARY KEY (divi, yea4, vono));
CREATE TABLE IF NOT EXISTS voucher_lines (divi TEXT, yea4 TEXT, vono TEXT, jsno INTEGER, data TEXT NOT NULL,
                                          PRIMARY KEY (divi, yea4, vono, jsno));
CREATE TABLE IF NOT EXISTS gl_pending (divi TEXT, vtxt TEXT, line INTEGER, data TEXT NOT NULL,
                                       PRIMARY KEY (divi, vtxt, line));
CREATE TABLE IF NOT EXISTS gl_batches (cono TEXT, key1 TEXT, state TEXT NOT NULL, data TEXT NOT NULL,
                                       PRIMARY KEY (cono, key1));
CREATE TABLE IF NOT EXISTS gl_batch_lines (cono TEXT, key1 TEXT, line INTEGER, data TEXT NOT NULL,
                                           PRIMARY KEY (cono, key1, line));
CREATE INDEX IF NOT EXISTS gl_batches_state ON gl_batches (state);
CREATE TABLE IF NOT EXISTS ar_items (divi TEXT, cuno TEXT, cino TEXT, inyr TEXT, data TEXT NOT NULL,
                                     PRIMARY KEY (divi, cuno, cino, inyr));
CREATE TABLE IF NOT EXISTS ar_batches (divi TEXT, pbid TEXT, state TEXT NOT NULL, data TEXT NOT NULL,
                                       PRIMARY KEY (divi, pbid));
CREATE TABLE IF NOT EXISTS ar_batch_lines (divi TEXT, pbid TEXT, trno INTEGER, data TEXT NOT NULL,
                                           PRIMARY KEY (divi, pbid, trno));
CREATE TABLE IF NOT EXISTS ar_batch_charges (divi TEXT, pbid TEXT, chri TEXT, data TEXT NOT NULL,
                                             PRIMARY KEY (divi, pbid, chri));
CREATE TABLE IF NOT EXISTS closed_periods (divi TEXT, period TEXT, PRIMARY KEY (divi, period));
CREATE TABLE IF NOT EXISTS exchange_rates (divi TEXT, cucd TEXT, crtp INTEGER, fdat TEXT, arat TEXT NOT NULL,
                                           PRIMARY KEY (divi, cucd, crtp, fdat));
CREATE TABLE IF NOT EXISTS tokens (digest TEXT PRIMARY KEY, kind TEXT NOT NULL, expires REAL NOT NULL,
                                   revoked INTEGER NOT NULL DEFAULT 0);
"""

# One lock per database file, shared by app instances in this process.
_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(path: Path) -> threading.RLock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(str(path.resolve()), threading.RLock())


class Tx:
    """One open SQLite transaction with small helpers for JSON records."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        return self.conn.execute(sql, params).fetchone()

    def all(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def record(self, sql: str, params: tuple[Any, ...] = ()) -> dict[str, str] | None:
        """The JSON ``data`` column of the first row, as a field dict."""
        row = self.one(sql, params)
        return None if row is None else json.loads(row["data"])

    def records(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, str]]:
        return [json.loads(r["data"]) for r in self.all(sql, params)]

    def next_number(self, name: str, start: int) -> int:
        """Next value of a number series (orders, invoices, vouchers ...); first value is ``start``."""
        row = self.one("SELECT value FROM counters WHERE name = ?", (name,))
        value = start if row is None else row["value"] + 1
        self.execute("INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)", (name, value))
        return value

    def setting(self, key: str) -> str | None:
        row = self.one("SELECT value FROM settings WHERE key = ?", (key,))
        return None if row is None else row["value"]

    def period_closed(self, divi: str, acdt: str) -> bool:
        return self.one("SELECT 1 FROM closed_periods WHERE divi = ? AND period = ?", (divi, acdt[:6])) is not None


def dumps(record: dict[str, str]) -> str:
    return json.dumps(record, sort_keys=True)


class Store:
    """The sandbox database under ``data_dir``; created (not seeded) on first open."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DB_NAME
        self._lock = _lock_for(self.path)
        self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA busy_timeout=30000")
            # WAL + NORMAL: commits survive a process crash; no fsync per MI call (a sandbox).
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """Serialised read-write transaction; rolled back when the body raises."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def snapshot(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """A read outside any write transaction (no write lock taken): what is committed now."""
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

"""One SQLite connection made durable, shared by threads: the base of the ledger and the store.

A file database runs in WAL mode with ``synchronous=FULL``, so a committed transaction is fsynced
before the call that made it returns; ``":memory:"`` skips both (nothing to make durable).
Connections run in autocommit mode (``isolation_level=None``): callers open their own
transactions (``BEGIN IMMEDIATE`` where a read decides a write).
"""

from __future__ import annotations

import sqlite3
import threading

__all__ = ["DurableDatabase", "open_durable"]


def open_durable(path: str, schema: str) -> sqlite3.Connection:
    """Open (creating if absent) the database at ``path`` and apply ``schema``."""
    connection = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=30.0
    )
    if path != ":memory:":
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
    connection.executescript(schema)
    return connection


class DurableDatabase:
    """A durable connection guarded by a process-local lock; a context manager that closes it."""

    def __init__(self, path: str, schema: str) -> None:
        self._lock = threading.Lock()
        self._conn = open_durable(path, schema)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

"""One SQLite connection made durable, shared by threads: the base of the ledger and the store.

A file database runs in WAL mode with ``synchronous=FULL``, so a committed transaction is fsynced
before the call that made it returns; ``":memory:"`` skips both (nothing to make durable).
Connections run in autocommit mode (``isolation_level=None``): callers open their own
transactions (``BEGIN IMMEDIATE`` where a read decides a write). Closing checkpoints the WAL into
the main file, so a closed database is one self-contained file.

This module is also the one home of the SQL that the ledger and the server's store share: the
columns of a training configuration (:data:`CONFIG_COLUMNS_SQL`), the clause that finds an
identical configuration (:data:`IDENTITY_SQL`) and the conversion of a row back to a
:class:`~bayes_scaling.space.RunConfig`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence

from bayes_scaling.errors import DatabaseFileError
from bayes_scaling.space import CONFIG_FIELDS, RunConfig

__all__ = [
    "CONFIG_COLUMNS_SQL",
    "IDENTITY_SQL",
    "DurableDatabase",
    "config_from_row",
    "open_durable",
]

#: The configuration's columns in a ``CREATE TABLE`` (the API's names and order).
CONFIG_COLUMNS_SQL = """
    d_model INTEGER NOT NULL,
    num_layers INTEGER NOT NULL,
    num_heads INTEGER NOT NULL,
    batch_size INTEGER NOT NULL,
    learning_rate REAL NOT NULL,
    train_flops INTEGER NOT NULL"""

#: ``WHERE`` clause of an identical configuration; bind :meth:`RunConfig.key`.
IDENTITY_SQL = " AND ".join(f"{name} = ?" for name in CONFIG_FIELDS)


def config_from_row(row: Sequence) -> RunConfig:
    """Build the configuration from the first six columns of a row (in ``CONFIG_FIELDS`` order)."""
    return RunConfig(
        d_model=int(row[0]), num_layers=int(row[1]), num_heads=int(row[2]),
        batch_size=int(row[3]), learning_rate=float(row[4]), train_flops=int(row[5]),
    )


def open_durable(path: str, schema: str) -> sqlite3.Connection:
    """Open (creating if absent) the database at ``path`` and apply ``schema``.

    Raises
    ------
    DatabaseFileError
        If the file is not a SQLite database, is a directory, or cannot be written.
    """
    try:
        connection = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        try:
            if path != ":memory:":
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=FULL")
            connection.executescript(schema)
        except BaseException:
            connection.close()
            raise
    except sqlite3.Error as exc:
        raise DatabaseFileError(f"{path}: cannot use it as a SQLite database ({exc})") from None
    return connection


class DurableDatabase:
    """A durable connection guarded by a process-local lock; a context manager that closes it."""

    def __init__(self, path: str, schema: str) -> None:
        self._lock = threading.Lock()
        self._db_path = path
        self._conn = open_durable(path, schema)
        self._closed = False

    def close(self) -> None:
        """Checkpoint the WAL into the main file and close the connection (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._db_path != ":memory:":
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass  # a busy or read-only file: closing still leaves a consistent database
            finally:
                self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

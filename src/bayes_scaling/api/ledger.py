"""The local ledger: every paid query, durable on disk before its result is used.

A SQLite file in WAL mode with ``synchronous=FULL``: a row committed by :meth:`Ledger.record` is
on disk (fsynced) when the call returns, so a crash right after cannot lose it. One row per
distinct configuration; the ledger answers repeats, totals the spend and lists the runs in order.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bayes_scaling.durable_sqlite import DurableDatabase
from bayes_scaling.errors import LedgerError
from bayes_scaling.oracle import Observation
from bayes_scaling.space import RunConfig

__all__ = ["Ledger", "LedgerEntry"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS paid_queries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    d_model INTEGER NOT NULL,
    num_layers INTEGER NOT NULL,
    num_heads INTEGER NOT NULL,
    batch_size INTEGER NOT NULL,
    learning_rate REAL NOT NULL,
    train_flops INTEGER NOT NULL,
    loss REAL NOT NULL,
    total_flops_used REAL,
    recorded_at TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS paid_queries_identity ON paid_queries (
    d_model, num_layers, num_heads, batch_size, learning_rate, train_flops
);
"""

_IDENTITY = (
    "d_model = ? AND num_layers = ? AND num_heads = ? AND batch_size = ? AND learning_rate = ?"
    " AND train_flops = ?"
)


@dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    """One ledger row: the observation, the API's spend after it, when and how it was recorded.

    ``source`` is ``"query"`` for a result this process paid for and ``"reconciled"`` for a run
    the API had but the ledger lacked (added on open).
    """

    observation: Observation
    total_flops_used: float | None
    recorded_at: str
    source: str


class Ledger(DurableDatabase):
    """A durable record of paid queries in one SQLite file.

    Parameters
    ----------
    path
        The ledger file; created with its parent folders if absent.
    """

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        try:
            super().__init__(str(self._path), _SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{self._path}: not a usable ledger ({exc})") from None

    @property
    def path(self) -> Path:
        """The ledger file."""
        return self._path

    def record(
        self,
        config: RunConfig,
        loss: float,
        total_flops_used: float | None,
        *,
        source: str = "query",
    ) -> bool:
        """Record a paid query durably; returns False if the configuration was already recorded.

        Raises
        ------
        LedgerError
            If the configuration is recorded with a different loss (the API is deterministic).
        """
        identity = config.key()
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    f"SELECT loss FROM paid_queries WHERE {_IDENTITY}", identity
                ).fetchone()
                if row is not None:
                    conn.execute("ROLLBACK")
                    if float(row[0]) != float(loss):
                        raise LedgerError(
                            f"{self._path}: {config} is recorded with loss {row[0]!r}, "
                            f"now answered {loss!r}"
                        )
                    return False
                conn.execute(
                    "INSERT INTO paid_queries (d_model, num_layers, num_heads, batch_size,"
                    " learning_rate, train_flops, loss, total_flops_used, recorded_at, source)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        *identity,
                        float(loss),
                        None if total_flops_used is None else float(total_flops_used),
                        datetime.now(timezone.utc).isoformat(),
                        source,
                    ),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return True

    def lookup(self, config: RunConfig) -> float | None:
        """Return the recorded loss of an identical configuration, or None."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT loss FROM paid_queries WHERE {_IDENTITY}", config.key()
            ).fetchone()
        return None if row is None else float(row[0])

    def total_flops(self) -> float:
        """Sum of ``train_flops`` over the recorded (distinct) configurations."""
        with self._lock:
            row = self._conn.execute("SELECT COALESCE(SUM(train_flops), 0) FROM paid_queries")
            return float(row.fetchone()[0])

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM paid_queries").fetchone()[0])

    def entries(self) -> list[LedgerEntry]:
        """Every row, in the order recorded."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT d_model, num_layers, num_heads, batch_size, learning_rate, train_flops,"
                " loss, total_flops_used, recorded_at, source FROM paid_queries ORDER BY seq"
            ).fetchall()
        return [
            LedgerEntry(
                observation=Observation(
                    config=RunConfig(
                        d_model=int(r[0]),
                        num_layers=int(r[1]),
                        num_heads=int(r[2]),
                        batch_size=int(r[3]),
                        learning_rate=float(r[4]),
                        train_flops=int(r[5]),
                    ),
                    loss=float(r[6]),
                ),
                total_flops_used=None if r[7] is None else float(r[7]),
                recorded_at=str(r[8]),
                source=str(r[9]),
            )
            for r in rows
        ]

    def observations(self) -> list[Observation]:
        """Every recorded observation, in the order recorded."""
        return [entry.observation for entry in self.entries()]

"""The simulator's SQLite store of runs and spend per API key.

The charge is atomic: in one ``BEGIN IMMEDIATE`` transaction the store looks up an identical
previous run of the key (free, the identical loss), else checks that the spend plus the run's
``train_flops`` stays within the budget (else it refuses and charges nothing), inserts the run and
adds the spend. ``BEGIN IMMEDIATE`` takes SQLite's write lock first, so two servers sharing one
file cannot both spend the last FLOPs; a process-local lock serializes threads sharing the
connection.

Keys are stored as SHA-256 digests, never in clear: the database file holds no secret.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bayes_scaling.durable_sqlite import DurableDatabase
from bayes_scaling.space import CONFIG_FIELDS, RunConfig

__all__ = ["ChargeResult", "RunStore", "key_digest"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spend (
    key_digest TEXT PRIMARY KEY,
    flops_used INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key_digest TEXT NOT NULL,
    d_model INTEGER NOT NULL,
    num_layers INTEGER NOT NULL,
    num_heads INTEGER NOT NULL,
    batch_size INTEGER NOT NULL,
    learning_rate REAL NOT NULL,
    train_flops INTEGER NOT NULL,
    loss REAL NOT NULL,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS runs_identity ON runs (
    key_digest, d_model, num_layers, num_heads, batch_size, learning_rate, train_flops
);
"""



def key_digest(api_key: str) -> str:
    """Return the SHA-256 hex digest under which a key's runs and spend are stored."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, kw_only=True)
class ChargeResult:
    """The outcome of :meth:`RunStore.charge`.

    ``accepted`` is False when the run would exceed the budget; then nothing was charged and
    ``loss`` is None. ``charged`` is the FLOPs added by this call (0 for a repeat or a refusal).
    """

    accepted: bool
    loss: float | None
    total_flops_used: float
    charged: int
    repeat: bool


class RunStore(DurableDatabase):
    """Runs and spend per API key in one SQLite database (WAL mode on a file).

    Parameters
    ----------
    path
        A database file (created if absent; runs and spend survive restarts) or ``":memory:"``
        for a store that lives as long as the object.
    """

    def __init__(self, path: str | Path = ":memory:") -> None:
        self._path = str(path)
        super().__init__(self._path, _SCHEMA)

    @property
    def path(self) -> str:
        """The database file, or ``":memory:"``."""
        return self._path

    def charge(
        self, api_key: str, config: RunConfig, loss: float, budget_flops: float
    ) -> ChargeResult:
        """Record a run of ``config`` for ``api_key`` and charge it, atomically.

        Parameters
        ----------
        api_key
            The (already authorized) key.
        config
            The validated configuration.
        loss
            The loss to record if the run is new (the simulator is deterministic, so a repeat's
            stored loss equals it; the stored one is returned).
        budget_flops
            The key's budget; the charge is refused if it would take the spend past it.
        """
        digest = key_digest(api_key)
        identity = config.key()
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT flops_used FROM spend WHERE key_digest = ?", (digest,)
                ).fetchone()
                used = int(row[0]) if row else 0
                previous = conn.execute(
                    "SELECT loss FROM runs WHERE key_digest = ? AND d_model = ? AND num_layers = ?"
                    " AND num_heads = ? AND batch_size = ? AND learning_rate = ?"
                    " AND train_flops = ?",
                    (digest, *identity),
                ).fetchone()
                if previous is not None:
                    conn.execute("COMMIT")
                    return ChargeResult(
                        accepted=True,
                        loss=float(previous[0]),
                        total_flops_used=float(used),
                        charged=0,
                        repeat=True,
                    )
                flops = int(config.train_flops)
                if used + flops > budget_flops:
                    conn.execute("ROLLBACK")
                    return ChargeResult(
                        accepted=False,
                        loss=None,
                        total_flops_used=float(used),
                        charged=0,
                        repeat=False,
                    )
                conn.execute(
                    "INSERT INTO runs (key_digest, d_model, num_layers, num_heads, batch_size,"
                    " learning_rate, train_flops, loss, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (digest, *identity, float(loss), datetime.now(timezone.utc).isoformat()),
                )
                conn.execute(
                    "INSERT INTO spend (key_digest, flops_used) VALUES (?, ?)"
                    " ON CONFLICT(key_digest) DO UPDATE SET flops_used = flops_used + ?",
                    (digest, flops, flops),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return ChargeResult(
            accepted=True,
            loss=float(loss),
            total_flops_used=float(used + flops),
            charged=flops,
            repeat=False,
        )

    def total_flops_used(self, api_key: str) -> float:
        """FLOPs charged to ``api_key`` so far (0.0 for a key never seen)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT flops_used FROM spend WHERE key_digest = ?", (key_digest(api_key),)
            ).fetchone()
        return float(row[0]) if row else 0.0

    def previous_runs(self, api_key: str) -> list[dict[str, Any]]:
        """Return the key's runs in the order they were charged, as the API's JSON rows."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {', '.join(CONFIG_FIELDS)}, loss FROM runs WHERE key_digest = ?"
                " ORDER BY id",
                (key_digest(api_key),),
            ).fetchall()
        return [
            {
                "d_model": int(r[0]),
                "num_layers": int(r[1]),
                "num_heads": int(r[2]),
                "batch_size": int(r[3]),
                "learning_rate": float(r[4]),
                "train_flops": int(r[5]),
                "loss": float(r[6]),
            }
            for r in rows
        ]

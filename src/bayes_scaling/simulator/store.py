"""The simulator's SQLite store of runs and spend per API key.

The charge is atomic: in one ``BEGIN IMMEDIATE`` transaction the store looks up an identical
previous run of the key (free, the identical loss), else checks that the spend plus the run's
``train_flops`` stays within the budget (else it refuses and charges nothing), inserts the run and
adds the spend. ``BEGIN IMMEDIATE`` takes SQLite's write lock first, so two servers sharing one
file cannot both spend the last FLOPs; a process-local lock serializes threads sharing the
connection.

Keys are stored as salted digests (HMAC-SHA-256 under a random salt kept in the database), never
in clear: the database file holds no secret, and equal keys of two databases do not match. A
database of an earlier version (unsalted SHA-256 digests) keeps its digests so its keys still
work. A loss that is not a finite number is stored as NULL (the answer of a broken truth).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bayes_scaling.durable_sqlite import CONFIG_COLUMNS_SQL, IDENTITY_SQL, DurableDatabase
from bayes_scaling.space import CONFIG_FIELDS, RunConfig

__all__ = ["ChargeResult", "RunStore", "key_digest"]

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS spend (
    key_digest TEXT PRIMARY KEY,
    flops_used INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key_digest TEXT NOT NULL,{CONFIG_COLUMNS_SQL},
    loss REAL,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS runs_identity ON runs (
    key_digest, {", ".join(CONFIG_FIELDS)}
);
CREATE TABLE IF NOT EXISTS store_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def key_digest(api_key: str, salt: str = "") -> str:
    """Return the digest under which a key's runs and spend are stored.

    With a ``salt`` (hex) it is HMAC-SHA-256 of the key under the salt; without one, the plain
    SHA-256 of databases written before salts were introduced.
    """
    if not salt:
        return hashlib.sha256(api_key.encode("utf-8")).hexdigest()
    return hmac.new(bytes.fromhex(salt), api_key.encode("utf-8"), hashlib.sha256).hexdigest()


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
        self._salt = self._load_salt()
        self._digests: dict[str, str] = {}

    def _load_salt(self) -> str:
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT value FROM store_meta WHERE name = 'key_salt'")
                found = row.fetchone()
                if found is not None:
                    salt = str(found[0])
                else:
                    legacy = conn.execute("SELECT COUNT(*) FROM spend").fetchone()[0] > 0
                    salt = "" if legacy else secrets.token_hex(16)
                    conn.execute("INSERT INTO store_meta (name, value) VALUES ('key_salt', ?)",
                                 (salt,))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return salt

    def _digest(self, api_key: str) -> str:
        digest = self._digests.get(api_key)
        if digest is None:
            digest = self._digests[api_key] = key_digest(api_key, self._salt)
        return digest

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
        digest = self._digest(api_key)
        identity = config.key()
        stored = float(loss) if math.isfinite(loss) else None
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT flops_used FROM spend WHERE key_digest = ?", (digest,)
                ).fetchone()
                used = int(row[0]) if row else 0
                previous = conn.execute(
                    f"SELECT loss FROM runs WHERE key_digest = ? AND {IDENTITY_SQL}",
                    (digest, *identity),
                ).fetchone()
                if previous is not None:
                    conn.execute("COMMIT")
                    return ChargeResult(
                        accepted=True,
                        loss=_loss(previous[0]),
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
                    (digest, *identity, stored, datetime.now(timezone.utc).isoformat()),
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
            loss=_loss(stored),
            total_flops_used=float(used + flops),
            charged=flops,
            repeat=False,
        )

    def total_flops_used(self, api_key: str) -> float:
        """FLOPs charged to ``api_key`` so far (0.0 for a key never seen)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT flops_used FROM spend WHERE key_digest = ?", (self._digest(api_key),)
            ).fetchone()
        return float(row[0]) if row else 0.0

    def previous_runs(self, api_key: str) -> list[dict[str, Any]]:
        """Return the key's runs in the order they were charged, as the API's JSON rows."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {', '.join(CONFIG_FIELDS)}, loss FROM runs WHERE key_digest = ?"
                " ORDER BY id",
                (self._digest(api_key),),
            ).fetchall()
        return [
            {
                "d_model": int(r[0]),
                "num_layers": int(r[1]),
                "num_heads": int(r[2]),
                "batch_size": int(r[3]),
                "learning_rate": float(r[4]),
                "train_flops": int(r[5]),
                "loss": _loss(r[6]),
            }
            for r in rows
        ]


def _loss(value) -> float:
    """A stored loss; NULL (a non-finite answer) reads back as NaN."""
    return float("nan") if value is None else float(value)

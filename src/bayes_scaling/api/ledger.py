"""The local ledger: every paid query, durable on disk before its result is used.

A SQLite file in WAL mode with ``synchronous=FULL``: a row committed by :meth:`Ledger.record` or
:meth:`Ledger.pay` is on disk (fsynced) when the call returns, so a crash right after cannot lose
it. One row per distinct configuration; the ledger answers repeats, totals the spend and lists
the runs in order.

- **One owner.** Opening a ledger takes an exclusive lock on ``<ledger>.lock``
  (:class:`~bayes_scaling.rundir.ExclusiveLock`) for as long as it is open; a second process
  gets a one-line error naming the holder's PID.
- **The budget.** :meth:`Ledger.pay` checks the budget, pays and records in one ``BEGIN
  IMMEDIATE`` transaction, so even writers that bypassed the lock cannot spend past it.
- **Failed queries.** An answer that is not a usable loss
  (:func:`~bayes_scaling.space.loss_problem`) is kept as a failed row: charged (it counts in
  :meth:`Ledger.total_flops`), never an observation.
- **One key.** :meth:`bind_key` stores a salted hash of the API key the ledger was started
  with (never the key) and refuses any other key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bayes_scaling.durable_sqlite import (
    CONFIG_COLUMNS_SQL,
    IDENTITY_SQL,
    DurableDatabase,
    config_from_row,
)
from bayes_scaling.errors import BudgetExceededError, DatabaseFileError, LedgerError
from bayes_scaling.oracle import Observation
from bayes_scaling.rundir import ExclusiveLock
from bayes_scaling.space import CONFIG_FIELDS, RunConfig, loss_problem

__all__ = ["Ledger", "LedgerEntry"]

_TABLE = f"""
CREATE TABLE IF NOT EXISTS paid_queries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,{CONFIG_COLUMNS_SQL},
    loss REAL,
    failure TEXT,
    total_flops_used REAL,
    recorded_at TEXT NOT NULL,
    source TEXT NOT NULL
);
"""
_SCHEMA = f"""{_TABLE}
CREATE UNIQUE INDEX IF NOT EXISTS paid_queries_identity
    ON paid_queries ({", ".join(CONFIG_FIELDS)});
CREATE TABLE IF NOT EXISTS ledger_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_COLUMNS = f"{', '.join(CONFIG_FIELDS)}, loss, failure, total_flops_used, recorded_at, source"


@dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    """One ledger row: the configuration, its answer, the API's spend after it, when and how.

    ``source`` is ``"query"`` for a result this process paid for and ``"reconciled"`` for a run
    the API had but the ledger lacked (added on open). ``failure`` is None for a usable loss,
    else why the answer was refused (``loss`` is then None: a failed query, charged, not fitted).
    """

    config: RunConfig
    loss: float | None
    failure: str | None
    total_flops_used: float | None
    recorded_at: str
    source: str

    @property
    def observation(self) -> Observation | None:
        """The observation a strategy may fit, or None for a failed query."""
        return None if self.failure is not None else Observation(config=self.config,
                                                                  loss=float(self.loss))


def _entry(row) -> LedgerEntry:
    return LedgerEntry(
        config=config_from_row(row), loss=None if row[6] is None else float(row[6]),
        failure=row[7], total_flops_used=None if row[8] is None else float(row[8]),
        recorded_at=str(row[9]), source=str(row[10]),
    )


def _key_hash(salt: str, api_key: str) -> str:
    return hmac.new(bytes.fromhex(salt), api_key.encode("utf-8"), hashlib.sha256).hexdigest()


class Ledger(DurableDatabase):
    """A durable record of paid queries in one SQLite file, owned by one open instance.

    Parameters
    ----------
    path
        The ledger file; created with its parent folders if absent.

    Raises
    ------
    LockedError
        If another process (or another open :class:`Ledger`) holds the file.
    LedgerError
        If the file is not a usable ledger.
    """

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._owner = ExclusiveLock(self._path.with_name(self._path.name + ".lock"),
                                    what=f"ledger {self._path}").acquire()
        try:
            _migrate(self._path)
            super().__init__(str(self._path), _SCHEMA)
        except DatabaseFileError as exc:
            self._owner.release()
            raise LedgerError(f"not a usable ledger: {exc}") from None
        except BaseException:
            self._owner.release()
            raise

    @property
    def path(self) -> Path:
        """The ledger file."""
        return self._path

    def close(self) -> None:
        """Close the database and release the lock."""
        try:
            super().close()
        finally:
            self._owner.release()

    # -- the key -------------------------------------------------------------------------------

    def bind_key(self, api_key: str) -> None:
        """Tie the ledger to ``api_key`` (a salted hash is stored), or check that it is the same.

        Raises
        ------
        LedgerError
            If the ledger was started with another key.
        """
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                meta = dict(conn.execute("SELECT name, value FROM ledger_meta").fetchall())
                if "key_hash" in meta:
                    if not hmac.compare_digest(meta["key_hash"],
                                               _key_hash(meta["key_salt"], api_key)):
                        raise LedgerError(
                            f"{self._path}: this ledger was started with another API key; "
                            "refusing to mix two keys' runs (use a new --out)"
                        )
                else:
                    salt = secrets.token_hex(16)
                    conn.executemany(
                        "INSERT INTO ledger_meta (name, value) VALUES (?, ?)",
                        [("key_salt", salt), ("key_hash", _key_hash(salt, api_key))],
                    )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    # -- writing -------------------------------------------------------------------------------

    def record(
        self,
        config: RunConfig,
        loss: float,
        total_flops_used: float | None,
        *,
        source: str = "query",
    ) -> bool:
        """Record a paid query durably; returns False if the configuration was already recorded.

        A ``loss`` that is not usable is recorded as a failed query.

        Raises
        ------
        LedgerError
            If the configuration is recorded with a different loss (the API is deterministic).
        """
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._find(config)
                if row is not None:
                    conn.execute("ROLLBACK")
                    self._check_same(row, loss)
                    return False
                self._insert(config, loss, total_flops_used, source)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return True

    def pay(
        self,
        config: RunConfig,
        charge: Callable[[RunConfig], tuple[float, float]],
        *,
        budget_flops: float,
        spent_elsewhere: float = 0.0,
    ) -> LedgerEntry:
        """Check the budget, pay ``charge(config)`` and record its answer, in one transaction.

        The ledger's write lock is held from the budget check to the commit, so no other writer
        can spend in between. A configuration already recorded is returned without paying.

        Parameters
        ----------
        config
            The validated configuration.
        charge
            The paid call: returns ``(loss, total_flops_used)`` or raises (nothing recorded).
        budget_flops
            The budget: refused if the ledger's spend (or ``spent_elsewhere``, the API's last
            reported spend, if larger) plus ``config.train_flops`` would exceed it.

        Raises
        ------
        BudgetExceededError
            Nothing was paid.
        """
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._find(config)
                if row is None:
                    used = max(self._spent(), float(spent_elsewhere))
                    if used + config.train_flops > budget_flops:
                        raise BudgetExceededError(
                            f"query of {config.train_flops:g} FLOPs refused locally: {used:g} "
                            f"of {budget_flops:g} FLOPs used"
                        )
                    loss, total = charge(config)
                    self._insert(config, loss, total, "query")
                    row = self._find(config)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return _entry(row)

    def _find(self, config: RunConfig):
        return self._conn.execute(
            f"SELECT {_COLUMNS} FROM paid_queries WHERE {IDENTITY_SQL}", config.key()
        ).fetchone()

    def _spent(self) -> float:
        row = self._conn.execute("SELECT COALESCE(SUM(train_flops), 0) FROM paid_queries")
        return float(row.fetchone()[0])

    def _check_same(self, row, loss) -> None:
        stored = _entry(row)
        problem = loss_problem(loss)
        if stored.failure is None and problem is None and stored.loss != float(loss):
            raise LedgerError(
                f"{self._path}: {stored.config} is recorded with loss {stored.loss!r}, "
                f"now answered {loss!r}"
            )

    def _insert(self, config, loss, total_flops_used, source) -> None:
        problem = loss_problem(loss)
        self._conn.execute(
            f"INSERT INTO paid_queries ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                *config.key(),
                None if problem else float(loss),
                problem,
                None if total_flops_used is None else float(total_flops_used),
                datetime.now(timezone.utc).isoformat(),
                source,
            ),
        )

    # -- reading -------------------------------------------------------------------------------

    def entry(self, config: RunConfig) -> LedgerEntry | None:
        """Return the recorded entry of an identical configuration (failed or not), or None."""
        with self._lock:
            row = self._find(config)
        return None if row is None else _entry(row)

    def lookup(self, config: RunConfig) -> float | None:
        """Return the recorded usable loss of an identical configuration, or None."""
        entry = self.entry(config)
        return None if entry is None or entry.failure is not None else entry.loss

    def total_flops(self) -> float:
        """Sum of ``train_flops`` over the recorded (distinct) configurations, failed included."""
        with self._lock:
            return self._spent()

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM paid_queries").fetchone()[0])

    def entries(self) -> list[LedgerEntry]:
        """Every row, in the order recorded (failed queries included)."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM paid_queries ORDER BY seq"
            ).fetchall()
        return [_entry(r) for r in rows]

    def observations(self) -> list[Observation]:
        """Every usable observation, in the order recorded (failed queries left out)."""
        return [e.observation for e in self.entries() if e.failure is None]

    def failed(self) -> list[LedgerEntry]:
        """The failed queries (charged, never fitted), in the order recorded."""
        return [e for e in self.entries() if e.failure is not None]


def _migrate(path: Path) -> None:
    """Bring a ledger of an earlier version (``loss NOT NULL``, no ``failure``) to this schema."""
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
    except sqlite3.Error:
        return  # open_durable names the problem
    try:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(paid_queries)")]
        if not columns or "failure" in columns:
            return
        kept = ", ".join(c for c in columns if c != "seq")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ALTER TABLE paid_queries RENAME TO paid_queries_old")
        conn.execute("DROP INDEX IF EXISTS paid_queries_identity")
        conn.execute(_TABLE)
        conn.execute(f"INSERT INTO paid_queries (seq, {kept}) SELECT seq, {kept} "
                     "FROM paid_queries_old ORDER BY seq")
        conn.execute("DROP TABLE paid_queries_old")
        conn.execute("COMMIT")
    except sqlite3.DatabaseError:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    finally:
        conn.close()

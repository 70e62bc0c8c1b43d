"""SQLite store of the 2026 simulator: experiments, budgets, final submissions, the clock.

Budgets follow spec §3: a key's ``used_seconds`` is the sum over its experiments of
``max_runtime_seconds`` while queued or running and ``min(max(1, used_runtime_seconds),
max_runtime_seconds)`` once finished; ``remaining = 43200 - used``. :meth:`Store2026.submit`
runs the budget check, the duplicate check and the insert in one ``BEGIN IMMEDIATE``
transaction, so concurrent submits of one key (threads or processes) run one at a time and can
never take the remaining budget below zero.

The simulated clock (seconds since the Unix epoch, moving ``time_scale`` times faster than the
wall clock) is saved in the same transaction as every write, and resumes from the saved value
after a restart: the clock stands still while the server is down, and runs in flight continue
from where they were. Keys are stored as SHA-256 digests only.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from bayes_scaling.api2026.schemas import TOTAL_BUDGET_SECONDS, TrainingConfig
from bayes_scaling.durable_sqlite import DurableDatabase

__all__ = ["ExperimentRow", "SimClock", "Store2026", "SubmitOutcome", "iso", "key_digest"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key_digest TEXT NOT NULL,
    unique_id TEXT NOT NULL,
    config_json TEXT NOT NULL,
    max_runtime_seconds REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    queued_at REAL NOT NULL,
    queued_at_text TEXT NOT NULL,
    dispatched_at REAL,
    run_id TEXT,
    val_losses_json TEXT NOT NULL DEFAULT '[]',
    used_runtime_seconds REAL,
    finished_at REAL,
    reason_json TEXT,
    UNIQUE (key_digest, unique_id)
);
CREATE INDEX IF NOT EXISTS experiments_by_status ON experiments (status);
CREATE TABLE IF NOT EXISTS final_submissions (
    key_digest TEXT PRIMARY KEY,
    request_json TEXT NOT NULL,
    submitted_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS clock (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    sim_seconds REAL NOT NULL
);
"""

_DATETIME = TypeAdapter(datetime)


def key_digest(api_key: str) -> str:
    """The SHA-256 hex digest under which a key's experiments are stored."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def iso(seconds: float) -> str:
    """A simulated time as the server's ISO-8601 text (pydantic's form: ``...Z``)."""
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return str(_DATETIME.dump_python(moment, mode="json"))


class SimClock:
    """Simulated seconds since the epoch: ``start + time_scale * (wall elapsed)``; thread-safe.

    Never goes backwards, even if the wall clock does.
    """

    def __init__(self, start: float, time_scale: float) -> None:
        if not time_scale > 0:
            raise ValueError(f"expected a positive time_scale, got {time_scale!r}")
        self._start = float(start)
        self._wall0 = time.monotonic()
        self._scale = float(time_scale)
        self._last = self._start
        self._lock = threading.Lock()

    @property
    def time_scale(self) -> float:
        """Simulated seconds per wall second."""
        return self._scale

    def now(self) -> float:
        """The current simulated time."""
        with self._lock:
            value = self._start + self._scale * (time.monotonic() - self._wall0)
            self._last = max(self._last, value)
            return self._last


@dataclass(frozen=True, kw_only=True)
class ExperimentRow:
    """One stored experiment (times in simulated epoch seconds)."""

    id: int
    key_digest: str
    config: TrainingConfig
    status: str
    queued_at: float
    dispatched_at: float | None
    run_id: str | None
    val_losses: list[float]
    used_runtime_seconds: float | None
    finished_at: float | None
    reason: dict[str, Any] | None


@dataclass(frozen=True, kw_only=True)
class SubmitOutcome:
    """``kind`` is ``"accepted"``, ``"budget"`` (400) or ``"duplicate"`` (409)."""

    kind: str
    experiment_id: int | None
    budget: dict[str, float]


_COLUMNS = (
    "id, key_digest, config_json, status, queued_at, dispatched_at, run_id, val_losses_json,"
    " used_runtime_seconds, finished_at, reason_json"
)


def _row(r: tuple) -> ExperimentRow:
    return ExperimentRow(
        id=int(r[0]),
        key_digest=r[1],
        config=TrainingConfig.model_validate_json(r[2]),
        status=r[3],
        queued_at=float(r[4]),
        dispatched_at=None if r[5] is None else float(r[5]),
        run_id=r[6],
        val_losses=[float(v) for v in json.loads(r[7])],
        used_runtime_seconds=None if r[8] is None else float(r[8]),
        finished_at=None if r[9] is None else float(r[9]),
        reason=None if r[10] is None else json.loads(r[10]),
    )


class Store2026(DurableDatabase):
    """Experiments, budgets and final submissions of the 2026 simulator in one SQLite file.

    Parameters
    ----------
    path
        The database file (created if absent; everything survives restarts) or ``":memory:"``.
    time_scale
        Simulated seconds per wall second of the clock this store keeps.
    total_budget_seconds
        Each key's budget (43,200 s on the course's server).
    """

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        time_scale: float = 1.0,
        total_budget_seconds: float = TOTAL_BUDGET_SECONDS,
    ) -> None:
        super().__init__(str(path), _SCHEMA)
        self.total_budget_seconds = float(total_budget_seconds)
        with self._lock:
            row = self._conn.execute("SELECT sim_seconds FROM clock WHERE id = 0").fetchone()
        start = time.time() if row is None else float(row[0])
        self.clock = SimClock(start, time_scale)

    # -- helpers that run inside a transaction (the caller holds the lock) -----------------

    def _save_clock(self, now: float) -> None:
        self._conn.execute(
            "INSERT INTO clock (id, sim_seconds) VALUES (0, ?)"
            " ON CONFLICT(id) DO UPDATE SET sim_seconds = max(sim_seconds, excluded.sim_seconds)",
            (now,),
        )

    def _used(self, digest: str) -> float:
        row = self._conn.execute(
            "SELECT COALESCE(SUM(CASE WHEN status IN ('queued', 'running')"
            " THEN max_runtime_seconds"
            " ELSE min(max(1.0, used_runtime_seconds), max_runtime_seconds) END), 0.0)"
            " FROM experiments WHERE key_digest = ?",
            (digest,),
        ).fetchone()
        return float(row[0])

    def _summary(self, digest: str) -> dict[str, float]:
        used = self._used(digest)
        return {
            "used_seconds": used,
            "remaining_seconds": self.total_budget_seconds - used,
            "total_budget_seconds": self.total_budget_seconds,
        }

    def _write(self, fn):
        """Run ``fn()`` in one BEGIN IMMEDIATE transaction that also saves the clock."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn()
                self._save_clock(self.clock.now())
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return result

    # -- the public API -------------------------------------------------------------------

    def budget(self, api_key: str) -> dict[str, float]:
        """The key's BudgetSummary as a mapping."""
        with self._lock:
            return self._summary(key_digest(api_key))

    def submit(self, api_key: str, config: TrainingConfig) -> SubmitOutcome:
        """Budget check (strictly greater is refused), duplicate check, insert: atomically."""
        digest = key_digest(api_key)

        def work() -> SubmitOutcome:
            summary = self._summary(digest)
            if config.max_runtime_seconds > summary["remaining_seconds"]:
                return SubmitOutcome(kind="budget", experiment_id=None, budget=summary)
            unique_id = config.unique_id
            exists = self._conn.execute(
                "SELECT 1 FROM experiments WHERE key_digest = ? AND unique_id = ?",
                (digest, unique_id),
            ).fetchone()
            if exists is not None:
                return SubmitOutcome(kind="duplicate", experiment_id=None, budget=summary)
            now = self.clock.now()
            cursor = self._conn.execute(
                "INSERT INTO experiments (key_digest, unique_id, config_json, max_runtime_seconds,"
                " status, queued_at, queued_at_text) VALUES (?, ?, ?, ?, 'queued', ?, ?)",
                (
                    digest,
                    unique_id,
                    config.model_dump_json(),
                    config.max_runtime_seconds,
                    now,
                    iso(now),
                ),
            )
            return SubmitOutcome(
                kind="accepted", experiment_id=int(cursor.lastrowid), budget=self._summary(digest)
            )

        return self._write(work)

    def experiment(self, api_key: str, experiment_id: int) -> ExperimentRow | None:
        """The key's experiment with this id, or None (missing or another key's)."""
        with self._lock:
            r = self._conn.execute(
                f"SELECT {_COLUMNS} FROM experiments WHERE id = ? AND key_digest = ?",
                (experiment_id, key_digest(api_key)),
            ).fetchone()
        return None if r is None else _row(r)

    def experiments(self, api_key: str) -> list[ExperimentRow]:
        """The key's experiments by queued_at as text, ties by id descending (spec §1.2)."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM experiments WHERE key_digest = ?"
                " ORDER BY queued_at_text ASC, id DESC",
                (key_digest(api_key),),
            ).fetchall()
        return [_row(r) for r in rows]

    def active(self) -> list[ExperimentRow]:
        """Every queued or running experiment of every key, by (queued_at, id)."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM experiments WHERE status IN ('queued', 'running')"
                " ORDER BY queued_at, id"
            ).fetchall()
        return [_row(r) for r in rows]

    def mark_running(self, experiment_id: int, run_id: str, dispatched_at: float) -> None:
        """Queued -> running (the dispatcher only)."""

        def work() -> None:
            self._conn.execute(
                "UPDATE experiments SET status = 'running', run_id = ?, dispatched_at = ?"
                " WHERE id = ? AND status = 'queued'",
                (run_id, dispatched_at, experiment_id),
            )

        self._write(work)

    def set_val_losses(self, experiment_id: int, val_losses: list[float]) -> None:
        """Replace a running experiment's cumulative ``val_losses``."""

        def work() -> None:
            self._conn.execute(
                "UPDATE experiments SET val_losses_json = ? WHERE id = ? AND status = 'running'",
                (json.dumps(val_losses), experiment_id),
            )

        self._write(work)

    def finish(
        self,
        experiment_id: int,
        *,
        status: str,
        used_runtime_seconds: float,
        finished_at: float,
        val_losses: list[float],
        reason: dict[str, Any] | None,
    ) -> None:
        """Running -> completed | failed (the worker only); the refund follows from the row."""
        if status not in ("completed", "failed"):
            raise ValueError(f"expected completed or failed, got {status!r}")

        def work() -> None:
            self._conn.execute(
                "UPDATE experiments SET status = ?, used_runtime_seconds = ?, finished_at = ?,"
                " val_losses_json = ?, reason_json = ? WHERE id = ? AND status = 'running'",
                (
                    status,
                    used_runtime_seconds,
                    finished_at,
                    json.dumps(val_losses),
                    None if reason is None else json.dumps(reason),
                    experiment_id,
                ),
            )

        self._write(work)

    def save_final(self, api_key: str, request_json: str) -> float:
        """Store (replace) the key's final submission; returns its simulated submitted_at."""
        digest = key_digest(api_key)
        now = self.clock.now()

        def work() -> None:
            self._conn.execute(
                "INSERT INTO final_submissions (key_digest, request_json, submitted_at)"
                " VALUES (?, ?, ?) ON CONFLICT(key_digest) DO UPDATE SET"
                " request_json = excluded.request_json, submitted_at = excluded.submitted_at",
                (digest, request_json, now),
            )

        self._write(work)
        return now

    def final(self, api_key: str) -> tuple[str, float] | None:
        """The key's final submission ``(request_json, submitted_at)``, or None."""
        with self._lock:
            r = self._conn.execute(
                "SELECT request_json, submitted_at FROM final_submissions WHERE key_digest = ?",
                (key_digest(api_key),),
            ).fetchone()
        return None if r is None else (r[0], float(r[1]))

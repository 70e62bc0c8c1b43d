"""The durable ledger of 2026 submissions: recorded (fsynced) before they are sent.

A SQLite file in WAL mode with ``synchronous=FULL`` (:mod:`bayes_scaling.durable_sqlite`): a row
committed here is on disk when the call returns. One row per configuration, keyed by the
server's configuration equality key (:func:`~bayes_scaling.api2026.schemas.config_unique_id`,
the 409 rule), so the ledger and the server agree on what "the same experiment" is.

Row states, in the order a row moves through them (never backwards):

``recorded``
    Decided and written, maybe sent: a crash may have happened before or after ``POST /submit``.
    :meth:`Ledger.attach` (on a 200, a 409 or a reconcile that finds it on the server) moves it on.
``queued`` / ``running``
    On the server with an ``experiment_id``; its reservation is held.
``completed`` / ``failed``
    Terminal: the server's final status is stored (curve, ``used_runtime_seconds``, reason).
``refused``
    The server (or the local budget guard) refused it before it existed (400, 422); nothing is
    charged. A later identical decision may record it again (:meth:`Ledger.record` revives it).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bayes_scaling.api2026.schemas import ExperimentResponse, TrainingConfig
from bayes_scaling.durable_sqlite import DurableDatabase
from bayes_scaling.errors import LedgerError

__all__ = ["ACTIVE_STATES", "TERMINAL_STATES", "Ledger", "Submission"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    unique_id TEXT NOT NULL UNIQUE,
    config_json TEXT NOT NULL,
    state TEXT NOT NULL,
    experiment_id INTEGER UNIQUE,
    status_json TEXT,
    note TEXT NOT NULL DEFAULT '',
    recorded_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS final_submissions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_json TEXT NOT NULL,
    response_json TEXT,
    recorded_at TEXT NOT NULL
);
"""

ACTIVE_STATES = ("queued", "running")
TERMINAL_STATES = ("completed", "failed")
_RANK = {"refused": 0, "recorded": 1, "queued": 2, "running": 3, "completed": 4, "failed": 4}
_COLUMNS = "seq, unique_id, config_json, state, experiment_id, status_json, note, recorded_at"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


@dataclass(frozen=True, kw_only=True)
class Submission:
    """One ledger row.

    Attributes
    ----------
    seq : int
        Order of recording.
    unique_id : str
        The server's configuration equality key.
    config : TrainingConfig
    state : str
        ``recorded``, ``queued``, ``running``, ``completed``, ``failed`` or ``refused``.
    experiment_id : int or None
    status : dict or None
        The server's last status object (JSON), None before the server has it.
    note : str
        How the row got its state (``"submitted"``, ``"409: fetched"``, ``"reconciled"``, the
        refusal's message).
    recorded_at : str
    """

    seq: int
    unique_id: str
    config: TrainingConfig
    state: str
    experiment_id: int | None
    status: dict[str, Any] | None
    note: str
    recorded_at: str

    @property
    def val_losses(self) -> list[float]:
        """The curve so far: ``val_losses`` (running, completed) or a timeout's partial list."""
        if not self.status:
            return []
        if "val_losses" in self.status:
            return [float(x) for x in self.status["val_losses"]]
        reason = self.status.get("reason") or {}
        return [float(x) for x in reason.get("partial_val_losses", [])]

    @property
    def used_runtime_seconds(self) -> float | None:
        """Seconds the server measured (terminal states), else None."""
        if not self.status or "used_runtime_seconds" not in self.status:
            return None
        return float(self.status["used_runtime_seconds"])

    @property
    def failure(self) -> str | None:
        """``"timeout"`` or ``"unexpected: <failure>"`` for a failed run, else None."""
        if self.state != "failed" or not self.status:
            return None
        reason = self.status.get("reason") or {}
        if reason.get("reason") == "timeout":
            return "timeout"
        return f"unexpected: {reason.get('failure', '')}"

    @property
    def charged_seconds(self) -> float:
        """The server's charge: the reservation while active, ``clip(used, 1, max)`` after."""
        reserve = float(self.config.max_runtime_seconds)
        if self.state == "refused":
            return 0.0
        if self.state in TERMINAL_STATES:
            used = self.used_runtime_seconds or 0.0
            return min(max(1.0, used), reserve)
        return reserve


def _row(r) -> Submission:
    return Submission(
        seq=int(r[0]),
        unique_id=str(r[1]),
        config=TrainingConfig.model_validate_json(r[2]),
        state=str(r[3]),
        experiment_id=None if r[4] is None else int(r[4]),
        status=None if r[5] is None else json.loads(r[5]),
        note=str(r[6]),
        recorded_at=str(r[7]),
    )


class Ledger(DurableDatabase):
    """Durable record of 2026 submissions in one SQLite file (created if absent)."""

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

    def _one(self, where: str, args: tuple) -> Submission | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM submissions WHERE {where}", args
        ).fetchone()
        return None if row is None else _row(row)

    def get(self, unique_id: str) -> Submission | None:
        """The row of a configuration key, or None."""
        with self._lock:
            return self._one("unique_id = ?", (unique_id,))

    def record(self, config: TrainingConfig, *, note: str = "decided") -> Submission:
        """Record ``config`` as ``recorded`` (durably) before it is sent; returns its row.

        An existing row is returned unchanged, except a ``refused`` one, which is revived.
        """
        uid = config.unique_id
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._one("unique_id = ?", (uid,))
                if row is None:
                    now = _now()
                    conn.execute(
                        "INSERT INTO submissions (unique_id, config_json, state, note,"
                        " recorded_at, updated_at) VALUES (?, ?, 'recorded', ?, ?, ?)",
                        (uid, config.model_dump_json(), note, now, now),
                    )
                elif row.state == "refused":
                    conn.execute(
                        "UPDATE submissions SET state = 'recorded', note = ?, updated_at = ?"
                        " WHERE unique_id = ?", (note, _now(), uid),
                    )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return self._one("unique_id = ?", (uid,))

    def attach(self, experiment: ExperimentResponse, *, note: str) -> tuple[Submission, bool]:
        """Store the server's view of an experiment (insert if unknown); never move backwards.

        Returns the row and whether its state changed.

        Raises
        ------
        LedgerError
            If the key is recorded under another ``experiment_id``.
        """
        config = experiment.training_config
        uid = config.unique_id
        status = experiment.status.model_dump(mode="json")
        state = status["status_type"]
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._one("unique_id = ?", (uid,))
                now = _now()
                changed = True
                if row is None:
                    conn.execute(
                        "INSERT INTO submissions (unique_id, config_json, state, experiment_id,"
                        " status_json, note, recorded_at, updated_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (uid, config.model_dump_json(), state, experiment.experiment_id,
                         json.dumps(status), note, now, now),
                    )
                else:
                    if row.experiment_id not in (None, experiment.experiment_id):
                        raise LedgerError(
                            f"{self._path}: config {uid} is experiment {row.experiment_id} "
                            f"here and {experiment.experiment_id} on the server"
                        )
                    grows = len(status.get("val_losses", [])) > len(row.val_losses)
                    if _RANK[state] > _RANK[row.state] or (state == row.state and grows):
                        conn.execute(
                            "UPDATE submissions SET state = ?, experiment_id = ?,"
                            " status_json = ?, note = CASE WHEN experiment_id IS NULL"
                            " THEN ? ELSE note END, updated_at = ? WHERE unique_id = ?",
                            (state, experiment.experiment_id, json.dumps(status), note, now,
                             uid),
                        )
                        changed = _RANK[state] > _RANK[row.state]
                    else:
                        changed = False
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return self._one("unique_id = ?", (uid,)), changed

    def refuse(self, unique_id: str, message: str) -> None:
        """Mark a ``recorded`` row refused (the server never created it)."""
        with self._lock:
            self._conn.execute(
                "UPDATE submissions SET state = 'refused', note = ?, updated_at = ?"
                " WHERE unique_id = ? AND state = 'recorded'", (message, _now(), unique_id),
            )

    def entries(self, *states: str) -> list[Submission]:
        """Rows in recording order, optionally only those in ``states``."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM submissions ORDER BY seq"
            ).fetchall()
        subs = [_row(r) for r in rows]
        return [s for s in subs if not states or s.state in states]

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0])

    def record_final(self, request: dict[str, Any]) -> int:
        """Record a final submission's request before it is sent; returns its row id."""
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO final_submissions (request_json, recorded_at) VALUES (?, ?)",
                (json.dumps(request), _now()),
            )
            return int(cur.lastrowid)

    def final_response(self, seq: int, response: dict[str, Any]) -> None:
        """Store the server's answer to final submission ``seq``."""
        with self._lock:
            self._conn.execute(
                "UPDATE final_submissions SET response_json = ? WHERE seq = ?",
                (json.dumps(response), seq),
            )

    def finals(self) -> list[dict[str, Any]]:
        """Every final submission: ``request``, ``response`` (None: unanswered), ``recorded_at``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT request_json, response_json, recorded_at FROM final_submissions"
                " ORDER BY seq"
            ).fetchall()
        return [
            {"request": json.loads(r[0]), "response": None if r[1] is None else json.loads(r[1]),
             "recorded_at": r[2]}
            for r in rows
        ]

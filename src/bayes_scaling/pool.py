"""A finite pool of candidate runs, and the durable record of the runs bought from it.

Pool mode replays (or plans) the loop over runs that exist outside it: a :class:`Pool` is a table
of candidate runs with a cost each; a run can be bought once, and its loss is revealed only when
it is bought. The losses are kept apart from the pool, inside a :class:`PoolOracle`, so a strategy
that holds the pool cannot read a loss it has not paid for. A row without a loss is a *planning*
candidate: buying it commits its cost and records it as pending; its loss is taken from the pool
file once the user has trained the run and filled it in (``run --resume``).

Every purchase is written to a :class:`PurchaseLedger` (SQLite, WAL, ``synchronous=FULL``, see
:mod:`bayes_scaling.durable_sqlite`) before the loss is returned, one row per pool row (a unique
key), so a run killed at any point and resumed loses no purchase and buys nothing twice.

Costs: a ``cost`` column when the file has one, else the run's compute (``6 N D`` for generic
rows, ``train_flops`` for API rows), in whatever unit the column uses.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bayes_scaling.durable_sqlite import DurableDatabase
from bayes_scaling.errors import DataFormatError, LedgerError
from bayes_scaling.features import RunFeatures, features_from_generic
from bayes_scaling.runs_io import RunsData, read_runs
from bayes_scaling.space import RunConfig

__all__ = [
    "Pool",
    "PoolOracle",
    "Purchase",
    "PurchaseLedger",
    "pool_from_arrays",
    "pool_from_runs",
    "read_pool",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Pool:
    """Candidate runs without their losses.

    Attributes
    ----------
    features : RunFeatures
        The ``M`` runs' features.
    cost : numpy.ndarray, shape (M,)
        What buying each run costs.
    keys : tuple of str
        A stable identity per row (its content, plus ``#k`` for the ``k``-th repeat of identical
        content), used by the ledger; rows appended to the file later keep the others' keys.
    kind : str
        ``"api"`` or ``"generic"``.
    description : str
    configs : tuple of RunConfig
        The API configurations (API pools only).
    row_numbers : tuple of int
        The file row of each run (empty for pools built in memory).
    cost_source : str
        Where the costs came from.
    """

    features: RunFeatures
    cost: np.ndarray = field(repr=False)
    keys: tuple[str, ...]
    kind: str
    description: str = ""
    configs: tuple[RunConfig, ...] = ()
    row_numbers: tuple[int, ...] = ()
    cost_source: str = "compute"

    def __post_init__(self) -> None:
        cost = np.asarray(self.cost, np.float64).reshape(-1)
        if cost.shape[0] != len(self.features) or len(self.keys) != len(self.features):
            raise DataFormatError(
                f"pool: expected {len(self.features)} costs and keys, got {cost.shape[0]} and "
                f"{len(self.keys)}"
            )
        if not np.all(np.isfinite(cost) & (cost > 0)):
            raise DataFormatError(f"cost: expected finite positive values, got {cost}")
        if len(set(self.keys)) != len(self.keys):
            raise DataFormatError("pool: expected unique row keys")
        cost.setflags(write=False)
        object.__setattr__(self, "cost", cost)

    def __len__(self) -> int:
        return len(self.features)

    @property
    def total_cost(self) -> float:
        """The cost of buying every run."""
        return float(self.cost.sum())

    def take(self, indices) -> Pool:
        """The rows at ``indices`` as a new pool (keys, costs and configs follow)."""
        idx = np.asarray(indices, dtype=np.int64)
        return Pool(
            features=self.features.take(idx),
            cost=self.cost[idx],
            keys=tuple(self.keys[i] for i in idx),
            kind=self.kind,
            description=self.description,
            configs=tuple(self.configs[i] for i in idx) if self.configs else (),
            row_numbers=tuple(self.row_numbers[i] for i in idx) if self.row_numbers else (),
            cost_source=self.cost_source,
        )

    def runs_data(self, indices, loss) -> RunsData:
        """The rows at ``indices`` with their (revealed) ``loss`` as :class:`RunsData`."""
        from bayes_scaling.oracle import Observation
        from bayes_scaling.runs_io import runs_from_observations

        idx = np.asarray(indices, dtype=np.int64)
        loss = np.asarray(loss, np.float64)
        if self.kind == "api":
            return runs_from_observations(
                [Observation(config=self.configs[i], loss=float(y)) for i, y in zip(idx, loss,
                                                                                    strict=True)]
            )
        f = self.features
        return RunsData(
            path="", kind="generic",
            description=f"{len(idx)} runs bought from the pool ({self.description})",
            n_params=f.n_params[idx], n_tokens=f.n_tokens[idx], flops=f.flops[idx], loss=loss,
        )


def _row_keys(features: RunFeatures, kind: str) -> tuple[str, ...]:
    if kind == "api":
        cols = ("d_model", "num_layers", "num_heads", "batch_size", "learning_rate", "flops")
    else:
        cols = ("n_params", "n_tokens")
    base = [
        kind + ":" + ",".join(repr(float(getattr(features, c)[i])) for c in cols)
        for i in range(len(features))
    ]
    seen: Counter = Counter()
    keys = []
    for key in base:
        keys.append(key if not seen[key] else f"{key}#{seen[key]}")
        seen[key] += 1
    return tuple(keys)


def pool_from_runs(runs: RunsData, cost=None, *, cost_source: str = "compute") -> Pool:
    """Split runs into a :class:`Pool` (features, cost) and their losses (NaN: not trained).

    Returns
    -------
    pool : Pool
    loss : numpy.ndarray, shape (M,)
        Keep it out of a strategy's reach: hand it to a :class:`PoolOracle`.
    """
    features = runs.features()
    cost = features.flops if cost is None else np.asarray(cost, np.float64)
    pool = Pool(
        features=features, cost=cost, keys=_row_keys(features, runs.kind), kind=runs.kind,
        description=runs.description, configs=tuple(runs.configs),
        row_numbers=tuple(runs.row_numbers), cost_source=cost_source,
    )
    return pool, np.asarray(runs.loss, np.float64).copy()


def pool_from_arrays(n_params, n_tokens, loss, cost=None, *, description: str = "") -> tuple:
    """A generic pool built in memory (the benchmark's real pools); see :func:`pool_from_runs`."""
    features = features_from_generic(n_params, n_tokens)
    cost = features.flops if cost is None else np.asarray(cost, np.float64)
    pool = Pool(features=features, cost=cost, keys=_row_keys(features, "generic"),
                kind="generic", description=description)
    return pool, np.asarray(loss, np.float64).reshape(-1).copy()


def read_pool(path: str | os.PathLike) -> tuple[Pool, np.ndarray]:
    """Read a pool file: any runs file ``fit`` reads, losses optional, an optional ``cost``.

    Returns
    -------
    pool : Pool
    loss : numpy.ndarray, shape (M,)
        NaN for rows not trained yet.
    """
    runs = read_runs(path, predict=True, extra_columns=("cost",))
    cost = runs.columns.get("cost")
    if cost is not None and not np.all(np.isfinite(cost)):
        bad = int(np.flatnonzero(~np.isfinite(cost))[0])
        raise DataFormatError(
            f"{path}: row {runs.row_numbers[bad]}, column 'cost': expected a positive number "
            "(every row needs a cost when the column is present), got a blank"
        )
    source = "the file's 'cost' column" if cost is not None else (
        "train_flops" if runs.kind == "api" else "6 N D"
    )
    return pool_from_runs(runs, cost, cost_source=source)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS purchases (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    row_key TEXT NOT NULL UNIQUE,
    cost REAL NOT NULL,
    loss REAL,
    reason TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
"""


@dataclass(frozen=True, kw_only=True)
class Purchase:
    """One ledger row: a bought pool row (``loss`` None while a planned run is pending)."""

    seq: int
    row_key: str
    cost: float
    loss: float | None
    reason: str


class PurchaseLedger(DurableDatabase):
    """The durable record of pool purchases, one SQLite file (``":memory:"`` for replays)."""

    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            super().__init__(str(path), _SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{path}: not a usable purchase ledger ({exc})") from None

    def record(self, row_key: str, cost: float, loss: float | None, reason: str) -> None:
        """Record a purchase (durable when this returns); a second purchase of a row is an error."""
        stamp = datetime.now(timezone.utc).isoformat()
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO purchases (row_key, cost, loss, reason, recorded_at) "
                    "VALUES (?, ?, ?, ?, ?)", (row_key, float(cost), loss, reason, stamp),
                )
            except sqlite3.IntegrityError:
                raise LedgerError(f"row {row_key}: expected a row not bought yet, got a repeat")\
                    from None

    def set_loss(self, row_key: str, loss: float) -> None:
        """Fill in the measured loss of a pending (planned) purchase."""
        with self._lock:
            self._conn.execute(
                "UPDATE purchases SET loss = ? WHERE row_key = ? AND loss IS NULL",
                (float(loss), row_key),
            )

    def purchases(self) -> list[Purchase]:
        """Every purchase, in the order bought."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, row_key, cost, loss, reason FROM purchases ORDER BY seq"
            ).fetchall()
        return [Purchase(seq=s, row_key=k, cost=c, loss=y, reason=r) for s, k, c, y, r in rows]


class PoolOracle:
    """Sells pool rows: records each purchase in the ledger, then reveals its loss.

    On construction it reconciles the ledger with the pool: every purchase must name a row of
    the pool (else :class:`LedgerError`: the pool file lost a bought row), and a pending purchase
    whose loss the pool now holds is completed.
    """

    def __init__(self, pool: Pool, loss, ledger: PurchaseLedger) -> None:
        self.pool = pool
        self._loss = np.asarray(loss, np.float64).reshape(-1).copy()
        if self._loss.shape[0] != len(pool):
            raise DataFormatError(f"loss: expected {len(pool)} values, got {self._loss.shape[0]}")
        self._ledger = ledger
        index = {k: i for i, k in enumerate(pool.keys)}
        self._order: list[int] = []
        self._revealed: dict[int, float] = {}
        self._pending: list[int] = []
        self._reasons: dict[int, str] = {}
        self._spent = 0.0
        for entry in ledger.purchases():
            if entry.row_key not in index:
                raise LedgerError(
                    f"ledger: expected every bought row in the pool, got {entry.row_key} missing"
                )
            i = index[entry.row_key]
            self._order.append(i)
            self._reasons[i] = entry.reason
            self._spent += entry.cost
            if entry.loss is None and math.isfinite(self._loss[i]):
                ledger.set_loss(entry.row_key, float(self._loss[i]))
                logger.info("planned run %s: loss %.4g now measured", entry.row_key,
                            self._loss[i])
                entry = Purchase(**{**entry.__dict__, "loss": float(self._loss[i])})
            if entry.loss is None:
                self._pending.append(i)
            else:
                self._revealed[i] = float(entry.loss)

    @property
    def spent(self) -> float:
        """Cost committed so far (pending planned runs included)."""
        return self._spent

    def bought_mask(self) -> np.ndarray:
        """Boolean ``(M,)``: rows bought or pending."""
        mask = np.zeros(len(self.pool), bool)
        mask[self._order] = True
        return mask

    def order(self) -> list[int]:
        """Bought rows in the order bought (pending included)."""
        return list(self._order)

    def revealed(self) -> tuple[np.ndarray, np.ndarray]:
        """Indices (in the order bought) and losses of the rows whose loss is known."""
        idx = [i for i in self._order if i in self._revealed]
        return np.array(idx, np.int64), np.array([self._revealed[i] for i in idx], np.float64)

    def pending(self) -> list[int]:
        """Planned rows bought but not trained yet (no loss in the pool file)."""
        return list(self._pending)

    def reason(self, index: int) -> str:
        """Why row ``index`` was bought (as recorded in the ledger)."""
        return self._reasons[int(index)]

    def buy(self, index: int, reason: str) -> float | None:
        """Buy row ``index``: record it durably, then return its loss (None: planned, pending)."""
        index = int(index)
        if index in self._revealed or index in self._pending:
            raise LedgerError(f"row {self.pool.keys[index]}: expected a row not bought yet, "
                              "got a repeat")
        loss = float(self._loss[index]) if math.isfinite(self._loss[index]) else None
        cost = float(self.pool.cost[index])
        self._ledger.record(self.pool.keys[index], cost, loss, reason)
        self._order.append(index)
        self._reasons[index] = reason
        self._spent += cost
        if loss is None:
            self._pending.append(index)
        else:
            self._revealed[index] = loss
        return loss

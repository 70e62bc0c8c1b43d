"""The oracle a strategy queries: a training API behind the durable ledger and a budget guard.

:func:`open_oracle` wraps a backend (the HTTP :class:`~bayes_scaling.api.client.TrainingApiClient`
or the in-process :class:`~bayes_scaling.simulator.inprocess.SimulatedApi`) in a
:class:`LedgeredOracle`, which implements :class:`bayes_scaling.oracle.LossOracle`:

- a repeat is answered from the ledger, without a request;
- the budget check, the paid request and the ledger write happen in one ledger transaction
  (:meth:`~bayes_scaling.api.ledger.Ledger.pay`): a query that would take the spend past the
  budget is refused before it is sent, and no other writer can spend in between;
- a paid result is recorded in the ledger (fsynced) before ``query`` returns it; an answer that
  is not a usable loss is recorded as a failed query and raises
  :class:`~bayes_scaling.errors.FailedQueryError` (now and on every later ask, without paying);
- on open, runs the API has but the ledger lacks (a crash after the API charged and before the
  ledger write) are added, and the API's spend is honoured, so nothing paid is lost or paid twice;
- with ``api_key`` the ledger is tied to that key (a salted hash) and refuses another key, and
  a ledger holding runs the API does not list for the key (another key's runs) is refused.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from bayes_scaling.api.ledger import Ledger
from bayes_scaling.errors import FailedQueryError, LedgerError
from bayes_scaling.oracle import Observation
from bayes_scaling.space import RunConfig, validate_config

__all__ = ["LedgeredOracle", "LossBackend", "open_oracle"]

logger = logging.getLogger(__name__)


class LossBackend(Protocol):
    """What the oracle needs of a training API (the HTTP client and the simulator have it)."""

    def loss(self, config: RunConfig) -> tuple[float, float]:
        """Charge and answer ``config``: ``(loss, total_flops_used)``."""
        ...

    def total_flops_used(self) -> float:
        """FLOPs the API has charged the key."""
        ...

    def previous_runs(self) -> list[Observation]:
        """Return the key's paid runs, in the API's order."""
        ...


class LedgeredOracle:
    """A :class:`~bayes_scaling.oracle.LossOracle` over a backend and a durable ledger.

    Build it with :func:`open_oracle`, which reconciles the ledger with the backend first.
    """

    def __init__(self, backend: LossBackend, ledger: Ledger, budget_flops: float) -> None:
        if not budget_flops > 0:
            raise ValueError(f"expected a positive budget_flops, got {budget_flops!r}")
        self._backend = backend
        self._ledger = ledger
        self._budget_flops = float(budget_flops)
        self._api_flops_used = 0.0

    def __repr__(self) -> str:
        return (
            f"LedgeredOracle(ledger={str(self._ledger.path)!r}, "
            f"budget_flops={self._budget_flops:g}, flops_used={self.flops_used():g})"
        )

    @property
    def budget_flops(self) -> float:
        """The FLOP budget the guard enforces."""
        return self._budget_flops

    @property
    def ledger(self) -> Ledger:
        """The durable ledger."""
        return self._ledger

    def flops_used(self) -> float:
        """FLOPs spent: the larger of the ledger's total and the API's last reported spend."""
        return max(self._ledger.total_flops(), self._api_flops_used)

    def remaining_flops(self) -> float:
        """FLOPs left under the budget."""
        return max(self._budget_flops - self.flops_used(), 0.0)

    def reconcile(self, *, strict: bool = False) -> int:
        """Add the API's runs that the ledger lacks and take in the API's spend.

        Returns the number of runs added. Runs in the ledger that the API does not list (an
        in-process simulator that restarted) are kept: the ledger is then the record, unless
        ``strict`` (an API that keeps every run of the key), where they mean the ledger holds
        another key's runs.

        Raises
        ------
        LedgerError
            With ``strict``, if the ledger holds runs the API does not list.
        """
        remote = self._backend.previous_runs()
        remote_keys = {obs.config.key() for obs in remote}
        local = self._ledger.entries()
        missing = sum(1 for entry in local if entry.config.key() not in remote_keys)
        if strict and missing:
            raise LedgerError(
                f"{self._ledger.path}: {missing} of its {len(local)} run(s) are not runs of this "
                "API key (another key's runs?); refusing to mix them (use a new --out)"
            )
        added = 0
        for observation in remote:
            if self._ledger.record(
                observation.config, observation.loss, None, source="reconciled"
            ):
                added += 1
        self._api_flops_used = max(self._api_flops_used, float(self._backend.total_flops_used()))
        if added:
            logger.warning("ledger %s: added %d paid run(s) it lacked", self._ledger.path, added)
        if missing:
            logger.info(
                "ledger %s: %d run(s) are not listed by the API; the ledger keeps them",
                self._ledger.path,
                missing,
            )
        return added

    def query(self, config: RunConfig) -> float:
        """Return the loss of ``config``: from the ledger if paid before, else from the API.

        Raises
        ------
        InvalidConfigError
            If the API would reject the configuration (nothing sent).
        BudgetExceededError
            If it would take the spend past the budget (nothing sent), or the API refused it.
        FailedQueryError
            If the API's answer (now or when it was paid) is not a usable loss; it is recorded
            as a failed query and never paid again.
        """
        entry = self._ledger.entry(config)
        if entry is None:
            validate_config(config)
            entry = self._ledger.pay(config, self._backend.loss, budget_flops=self._budget_flops,
                                     spent_elsewhere=self._api_flops_used)
            if entry.total_flops_used is not None:
                self._api_flops_used = max(self._api_flops_used, entry.total_flops_used)
            if entry.failure is not None:
                logger.warning("query %s was charged but answered no usable loss (%s); "
                               "recorded as a failed query, never fitted", config, entry.failure)
        if entry.failure is not None:
            raise FailedQueryError(f"{config}: failed query, not fitted ({entry.failure})")
        return float(entry.loss)

    def failed_queries(self) -> list[RunConfig]:
        """Configurations paid for whose answer was not a usable loss, in the order recorded."""
        return [entry.config for entry in self._ledger.failed()]

    def observations(self) -> list[Observation]:
        """Every paid run, in the order recorded."""
        return self._ledger.observations()

    def close(self) -> None:
        """Close the ledger (the backend belongs to the caller)."""
        self._ledger.close()

    def __enter__(self) -> LedgeredOracle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_oracle(
    backend: LossBackend,
    ledger_path: str | Path,
    budget_flops: float,
    *,
    api_key: str | None = None,
) -> LedgeredOracle:
    """Open the ledger at ``ledger_path``, reconcile it with ``backend`` and return the oracle.

    Parameters
    ----------
    backend
        A :class:`~bayes_scaling.api.client.TrainingApiClient` or a
        :class:`~bayes_scaling.simulator.inprocess.SimulatedApi`.
    ledger_path
        The ledger file (created if absent; reopened to resume).
    budget_flops
        The budget the local guard enforces.
    api_key
        The key of an API that keeps every run of the key (``None`` for the in-process
        simulator): the ledger is tied to it and must hold only its runs.

    Raises
    ------
    LockedError
        If another process holds the ledger.
    LedgerError
        If the ledger belongs to another key or holds runs the API does not list for it.
    """
    oracle = LedgeredOracle(backend, Ledger(ledger_path), budget_flops)
    try:
        if api_key is not None:
            oracle.ledger.bind_key(api_key)
        oracle.reconcile(strict=api_key is not None)
    except BaseException:
        oracle.close()
        raise
    return oracle

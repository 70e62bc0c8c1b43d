"""The oracle a strategy queries: a training API behind the durable ledger and a budget guard.

:func:`open_oracle` wraps a backend (the HTTP :class:`~bayes_scaling.api.client.TrainingApiClient`
or the in-process :class:`~bayes_scaling.simulator.inprocess.SimulatedApi`) in a
:class:`LedgeredOracle`, which implements :class:`bayes_scaling.oracle.LossOracle`:

- a repeat is answered from the ledger, without a request;
- a query that would take the spend past the budget is refused locally before it is sent;
- a paid result is recorded in the ledger (fsynced) before ``query`` returns it;
- on open, runs the API has but the ledger lacks (a crash after the API charged and before the
  ledger write) are added, and the API's spend is honoured, so nothing paid is lost or paid twice.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from bayes_scaling.api.ledger import Ledger
from bayes_scaling.errors import BudgetExceededError
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

    def reconcile(self) -> int:
        """Add the API's runs that the ledger lacks and take in the API's spend.

        Returns the number of runs added. Runs in the ledger that the API does not list (an
        in-process simulator that restarted) are kept: the ledger is then the record.
        """
        remote = self._backend.previous_runs()
        added = 0
        for observation in remote:
            if self._ledger.record(
                observation.config, observation.loss, None, source="reconciled"
            ):
                added += 1
        self._api_flops_used = max(self._api_flops_used, float(self._backend.total_flops_used()))
        remote_keys = {obs.config.key() for obs in remote}
        local = self._ledger.observations()
        missing = sum(1 for obs in local if obs.config.key() not in remote_keys)
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
        """
        known = self._ledger.lookup(config)
        if known is not None:
            return known
        validate_config(config)
        used = self.flops_used()
        if used + config.train_flops > self._budget_flops:
            raise BudgetExceededError(
                f"query of {config.train_flops:g} FLOPs refused locally: {used:g} of "
                f"{self._budget_flops:g} FLOPs used"
            )
        loss, total = self._backend.loss(config)
        self._ledger.record(config, loss, total, source="query")
        self._api_flops_used = max(self._api_flops_used, float(total))
        return loss

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
    backend: LossBackend, ledger_path: str | Path, budget_flops: float
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
    """
    oracle = LedgeredOracle(backend, Ledger(ledger_path), budget_flops)
    try:
        oracle.reconcile()
    except BaseException:
        oracle.close()
        raise
    return oracle

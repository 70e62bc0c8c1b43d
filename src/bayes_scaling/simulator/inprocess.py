"""The simulated training API in-process: the HTTP client's methods without HTTP.

:class:`SimulatedApi` has the methods of :class:`~bayes_scaling.api.client.TrainingApiClient`
(``loss``, ``total_flops_used``, ``previous_runs``) and the same rules: validation with the API's
messages, repeats free and identical, the budget a hard cap that charges nothing when it refuses.
Its store is in memory by default, so it forgets across processes; behind
:func:`bayes_scaling.api.oracle.open_oracle` the durable ledger is then the record.
"""

from __future__ import annotations

from bayes_scaling.errors import BudgetExceededError
from bayes_scaling.oracle import Observation
from bayes_scaling.simulator.store import RunStore
from bayes_scaling.simulator.truth import Truth, observed_loss
from bayes_scaling.space import RunConfig, parse_config, validate_config

__all__ = ["SimulatedApi"]

_IN_PROCESS_KEY = "in-process"


class SimulatedApi:
    """The simulator behind the training API's methods, in this process.

    Parameters
    ----------
    truth
        The simulator's truth.
    budget_flops
        The hard FLOP cap.
    store
        Where runs and spend live; a fresh in-memory store by default.
    """

    def __init__(
        self, truth: Truth, budget_flops: float = 2e18, *, store: RunStore | None = None
    ) -> None:
        if not budget_flops > 0:
            raise ValueError(f"expected a positive budget_flops, got {budget_flops!r}")
        self._truth = truth
        self._budget_flops = float(budget_flops)
        self._store = store if store is not None else RunStore(":memory:")

    def __repr__(self) -> str:
        return f"SimulatedApi(budget_flops={self._budget_flops:g})"

    @property
    def budget_flops(self) -> float:
        """The hard FLOP cap."""
        return self._budget_flops

    def loss(self, config: RunConfig) -> tuple[float, float]:
        """Answer and charge ``config``; returns ``(loss, total_flops_used)``.

        Raises
        ------
        InvalidConfigError
            With the API's message.
        BudgetExceededError
            If the query would exceed the budget; nothing is charged.
        """
        validate_config(config)
        result = self._store.charge(
            _IN_PROCESS_KEY, config, observed_loss(self._truth, config), self._budget_flops
        )
        if not result.accepted:
            raise BudgetExceededError(
                f"Query would exceed the FLOPs budget: total_flops_used "
                f"{result.total_flops_used:g} + train_flops {config.train_flops:g} > budget "
                f"{self._budget_flops:g}; nothing was charged"
            )
        return float(result.loss), result.total_flops_used

    def total_flops_used(self) -> float:
        """FLOPs charged so far."""
        return self._store.total_flops_used(_IN_PROCESS_KEY)

    def previous_runs(self) -> list[Observation]:
        """Every paid run, in the order charged."""
        return [
            Observation(config=parse_config(row), loss=row["loss"])
            for row in self._store.previous_runs(_IN_PROCESS_KEY)
        ]

    def close(self) -> None:
        """Release the store."""
        self._store.close()

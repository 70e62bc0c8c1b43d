"""What a strategy sees of the training API: the :class:`LossOracle` protocol.

The loop depends on this protocol only; the HTTP client and the in-process simulator both
implement it, each behind the durable ledger, so a strategy cannot tell them apart and never sees
the simulator's truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bayes_scaling.space import RunConfig

__all__ = ["LossOracle", "Observation"]


@dataclass(frozen=True, kw_only=True)
class Observation:
    """One answered query: the configuration and the final training loss the API returned."""

    config: RunConfig
    loss: float


@runtime_checkable
class LossOracle(Protocol):
    """A training API as a strategy sees it.

    ``query`` charges ``config.train_flops`` unless the identical configuration was answered
    before, in which case it returns the identical loss for free. Every answered query is recorded
    durably before ``query`` returns.
    """

    @property
    def budget_flops(self) -> float:
        """The key's total FLOP budget."""
        ...

    def flops_used(self) -> float:
        """FLOPs charged so far."""
        ...

    def query(self, config: RunConfig) -> float:
        """Return the final loss of ``config``; raise ``BudgetExceededError`` if unaffordable."""
        ...

    def observations(self) -> list[Observation]:
        """Every answered query so far, in the order they were paid for."""
        ...

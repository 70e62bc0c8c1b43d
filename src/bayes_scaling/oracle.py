"""What a strategy sees of a training API: the :class:`LossOracle` and :class:`ExperimentOracle`.

- :class:`LossOracle` is the 2025 API's synchronous view (a query is answered at once, free on a
  repeat, charged in FLOPs). The loop of :mod:`bayes_scaling.loop` depends on it only; the HTTP
  client and the in-process simulator both implement it behind the durable ledger.
- :class:`ExperimentOracle` is the general view both APIs share: an experiment is *submitted*,
  may take time, and ends ``completed`` (a final loss and its curve at known token counts),
  ``failed`` (a timeout with a partial curve, or an unexpected crash) or ``refused`` (never
  created, nothing charged), with the budget in the API's own unit (``"flops"`` or
  ``"seconds"``). The 2026 job API implements it in
  :class:`bayes_scaling.api2026.jobs_oracle.JobsOracle`; :class:`SyncExperimentOracle` adapts any
  :class:`LossOracle` (the 2025 API: every submission completes at once, one point of training
  loss at ``D = train_flops / (6 N)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from bayes_scaling.space import RunConfig

__all__ = [
    "ExperimentOracle",
    "ExperimentOutcome",
    "LossOracle",
    "Observation",
    "SyncExperimentOracle",
]


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


@dataclass(frozen=True, kw_only=True)
class ExperimentOutcome:
    """The end of one submitted experiment, the same record for both APIs.

    Attributes
    ----------
    key : str
        The configuration's identity (the API's equality key).
    config : object
        ``RunConfig`` (2025) or ``api2026.schemas.TrainingConfig`` (2026).
    state : {"completed", "failed", "refused"}
    final_loss : float or None
        The last loss of a completed run (None otherwise).
    curve : tuple of (int, float)
        ``(tokens seen, loss)`` checkpoints: one point for 2025, ``n_evals`` for a completed 2026
        run, the finished chunks of a timed-out one.
    loss_kind : {"train", "val"}
    failure : str or None
        ``"timeout"``, ``"unexpected: ..."`` or the refusal's message.
    charged : float
        What the API charged, in ``budget_unit``.
    runtime_seconds : float or None
        The API's measured training time (2026), None where the API reports none.
    """

    key: str
    config: Any
    state: str
    final_loss: float | None
    curve: tuple[tuple[int, float], ...]
    loss_kind: str
    failure: str | None
    charged: float
    runtime_seconds: float | None = None


@runtime_checkable
class ExperimentOracle(Protocol):
    """A training API as a job queue: submit, then collect outcomes as they end.

    ``submit`` records the decision durably before anything is sent, so a crash never loses a
    paid experiment nor pays for one twice.
    """

    @property
    def budget_unit(self) -> str:
        """``"flops"`` or ``"seconds"``."""
        ...

    @property
    def budget_total(self) -> float:
        """What this client may spend in all, in ``budget_unit``."""
        ...

    def budget_committed(self) -> float:
        """Charges of finished experiments plus reservations of those in flight."""
        ...

    def submit(self, config: Any) -> str:
        """Submit ``config``; return its key. Raise ``BudgetExceededError`` if refused."""
        ...

    def in_flight(self) -> list[Any]:
        """Configurations of submitted experiments that have not ended."""
        ...

    def poll(self) -> list[ExperimentOutcome]:
        """Ask the API for news; return the outcomes that ended since the last call."""
        ...

    def outcomes(self) -> list[ExperimentOutcome]:
        """Every ended experiment (completed or failed), in the order submitted."""
        ...


class SyncExperimentOracle:
    """The 2025 API (:class:`LossOracle`) as an :class:`ExperimentOracle`: jobs end at once."""

    def __init__(self, oracle: LossOracle) -> None:
        self._oracle = oracle
        self._new: list[ExperimentOutcome] = []

    @property
    def budget_unit(self) -> str:
        """FLOPs."""
        return "flops"

    @property
    def budget_total(self) -> float:
        """The oracle's FLOP budget."""
        return float(self._oracle.budget_flops)

    def budget_committed(self) -> float:
        """FLOPs charged (nothing is ever in flight)."""
        return float(self._oracle.flops_used())

    @staticmethod
    def _outcome(obs: Observation) -> ExperimentOutcome:
        from bayes_scaling.params import non_embedding_params, tokens_for_flops

        cfg = obs.config
        tokens = int(tokens_for_flops(cfg.train_flops,
                                      non_embedding_params(cfg.d_model, cfg.num_layers)))
        return ExperimentOutcome(
            key=repr(cfg.key()), config=cfg, state="completed", final_loss=float(obs.loss),
            curve=((tokens, float(obs.loss)),), loss_kind="train", failure=None,
            charged=float(cfg.train_flops),
        )

    def submit(self, config: RunConfig) -> str:
        """Query ``config`` now; its outcome is returned by the next :meth:`poll`."""
        loss = self._oracle.query(config)
        self._new.append(self._outcome(Observation(config=config, loss=loss)))
        return repr(config.key())

    def in_flight(self) -> list[RunConfig]:
        """Nothing: a 2025 query is answered before ``submit`` returns."""
        return []

    def poll(self) -> list[ExperimentOutcome]:
        """The outcomes of the submissions since the last poll."""
        new, self._new = self._new, []
        return new

    def outcomes(self) -> list[ExperimentOutcome]:
        """Every answered query."""
        return [self._outcome(obs) for obs in self._oracle.observations()]


"""The 2026 job API in-process on a virtual clock: an ExperimentOracle for experiments.

:class:`VirtualJobsOracle` answers :func:`bayes_scaling.jobs_loop.run_jobs_loop` the way
``serve --api 2026`` does (the same truth, :func:`~bayes_scaling.simulator.truth2026.simulate_run`,
the same timeout rule, :func:`~bayes_scaling.simulator.server2026.plan_finish`, the same charge
``min(max(1, used_runtime_seconds), max_runtime_seconds)``, a reservation held while a run is
active, 409-style de-duplication), without HTTP, SQLite or wall-clock waits: simulated time moves
only when the loop sleeps (:meth:`VirtualJobsOracle.sleep`, ``time_scale`` simulated seconds per
second asked), so a run of the loop is deterministic given its seed and costs only its fits. Not
durable (nothing survives the process): for measuring strategies, never for a paid API.
"""

from __future__ import annotations

from dataclasses import dataclass

from bayes_scaling.api2026.schemas import TrainingConfig
from bayes_scaling.errors import BudgetExceededError
from bayes_scaling.oracle import ExperimentOutcome
from bayes_scaling.simulator.server2026 import FinishPlan, plan_finish
from bayes_scaling.simulator.truth2026 import Truth2026, simulate_run

__all__ = ["VirtualJobsOracle"]

#: Simulated seconds between a submit and the start of the run's setup (the server's dispatch).
QUEUE_SECONDS = 1.3


@dataclass(kw_only=True)
class _Run:
    config: TrainingConfig
    plan: FinishPlan
    ends_at: float
    reported: bool = False

    @property
    def charged(self) -> float:
        limit = float(self.config.max_runtime_seconds)
        return min(max(1.0, self.plan.used_runtime_seconds), limit)

    def outcome(self) -> ExperimentOutcome:
        cfg, plan = self.config, self.plan
        step = cfg.total_train_tokens // cfg.n_evals
        curve = tuple(((i + 1) * step, float(v)) for i, v in enumerate(plan.val_losses))
        completed = plan.status == "completed"
        failure = None
        if not completed:
            reason = plan.reason or {}
            failure = ("timeout" if reason.get("reason") == "timeout"
                       else f"unexpected: {reason.get('failure', '')}")
        return ExperimentOutcome(
            key=cfg.unique_id, config=cfg, state=plan.status,
            final_loss=curve[-1][1] if completed and curve else None, curve=curve,
            loss_kind="val", failure=failure, charged=self.charged,
            runtime_seconds=float(plan.used_runtime_seconds),
        )


class VirtualJobsOracle:
    """The 2026 API on a virtual clock (see the module docstring).

    Parameters
    ----------
    truth : Truth2026
    budget_seconds : float
        The key's budget (reservations of active runs plus charges of ended ones never exceed it).
    time_scale : float
        Simulated seconds per second the loop sleeps.
    """

    def __init__(self, truth: Truth2026, budget_seconds: float, *,
                 time_scale: float = 3000.0) -> None:
        if not budget_seconds > 0:
            raise ValueError(f"budget_seconds: expected a positive number, got {budget_seconds!r}")
        if not time_scale > 0:
            raise ValueError(f"time_scale: expected a positive number, got {time_scale!r}")
        self.truth = truth
        self.now = 0.0
        self._budget = float(budget_seconds)
        self._scale = float(time_scale)
        self._runs: dict[str, _Run] = {}

    budget_unit = "seconds"  # of B200 time

    @property
    def budget_total(self) -> float:
        """The key's seconds budget."""
        return self._budget

    def _active(self, run: _Run) -> bool:
        return run.ends_at > self.now

    def budget_committed(self) -> float:
        """Charges of ended runs plus reservations of active ones, in seconds."""
        return float(sum(float(r.config.max_runtime_seconds) if self._active(r) else r.charged
                         for r in self._runs.values()))

    def submit(self, config: TrainingConfig) -> str:
        """Start ``config`` now; an identical configuration is not started twice.

        Raises
        ------
        BudgetExceededError
            Its ``max_runtime_seconds`` exceeds the seconds left (the server's 400).
        """
        key = config.unique_id
        if key in self._runs:
            return key
        need = float(config.max_runtime_seconds)
        left = self._budget - self.budget_committed()
        if need > left:
            raise BudgetExceededError(f"insufficient budget: reservation {need:g} s, {left:g} s "
                                      "left")
        outcome = simulate_run(self.truth, config)
        plan = plan_finish(outcome, need)
        start = self.now + QUEUE_SECONDS + outcome.setup_seconds
        self._runs[key] = _Run(config=config, plan=plan, ends_at=start + plan.at)
        return key

    def in_flight(self) -> list[TrainingConfig]:
        """Configurations of runs that have not ended."""
        return [r.config for r in self._runs.values() if self._active(r)]

    def poll(self) -> list[ExperimentOutcome]:
        """Outcomes of the runs that ended since the last poll."""
        new = []
        for run in self._runs.values():
            if not run.reported and not self._active(run):
                run.reported = True
                new.append(run.outcome())
        return new

    def outcomes(self) -> list[ExperimentOutcome]:
        """Every ended run that a poll has reported, in submission order."""
        return [r.outcome() for r in self._runs.values() if r.reported]

    def sleep(self, seconds: float) -> None:
        """Let ``seconds * time_scale`` simulated seconds pass (the loop's ``sleep``)."""
        self.now += float(seconds) * self._scale

    def seconds_charged(self) -> float:
        """What the ended runs were charged, in seconds."""
        return float(sum(r.charged for r in self._runs.values() if not self._active(r)))

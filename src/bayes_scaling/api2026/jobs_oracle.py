"""The 2026 job API behind the durable ledger: an :class:`~bayes_scaling.oracle.ExperimentOracle`.

Every submission follows record -> send -> attach:

1. :meth:`JobsOracle.submit` validates the configuration (the server's models), checks the local
   budget (charges + reservations + this reservation <= the client's budget), and records the row
   in the ledger (fsynced) *before* ``POST /submit``.
2. A 200 attaches the experiment id; a 409 means "already exists: fetch it" (a crash after the
   server created it and before the ledger heard back, or a retried POST): the experiment is
   looked up in ``GET /experiments`` by the configuration equality key and attached. A 400 or 422
   marks the row refused (nothing was created or charged).
3. :meth:`JobsOracle.sync` (on open and at every poll) reads ``GET /experiments`` once, attaches
   every experiment to its row by key (adding any the ledger lacks), and sends again the rows
   still ``recorded`` that the server does not have: a crash between record and send never loses
   the decision, never submits twice, and a run that ended while the client was down is
   collected on restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bayes_scaling.api2026.client import JobsApiClient, validate_training_config
from bayes_scaling.api2026.ledger import ACTIVE_STATES, TERMINAL_STATES, Ledger, Submission
from bayes_scaling.api2026.schemas import FinalSubmissionResponse, TrainingConfig
from bayes_scaling.errors import (
    ApiValidationError,
    BudgetExceededError,
    DuplicateExperimentError,
    LedgerError,
)
from bayes_scaling.oracle import ExperimentOutcome

__all__ = ["JobsOracle", "outcome_of"]

logger = logging.getLogger(__name__)


def outcome_of(sub: Submission) -> ExperimentOutcome:
    """The shared experiment record of a terminal ledger row."""
    cfg = sub.config
    step = cfg.total_train_tokens // cfg.n_evals
    curve = tuple(((i + 1) * step, loss) for i, loss in enumerate(sub.val_losses))
    completed = sub.state == "completed"
    return ExperimentOutcome(
        key=sub.unique_id, config=cfg, state=sub.state,
        final_loss=curve[-1][1] if completed and curve else None, curve=curve, loss_kind="val",
        failure=sub.failure, charged=sub.charged_seconds,
        runtime_seconds=sub.used_runtime_seconds,
    )


class JobsOracle:
    """The 2026 API as an experiment queue with a durable ledger and a seconds budget.

    Parameters
    ----------
    client : JobsApiClient
    ledger : Ledger
    budget_seconds : float
        What this client may commit in all (charges plus reservations); the server's own
        remaining budget is respected too.
    hook : callable, optional
        ``hook(point)`` at ``"recorded"`` (written, not yet sent) and ``"sent"`` (200 received,
        not yet attached): crash tests kill the process there.
    """

    def __init__(
        self,
        client: JobsApiClient,
        ledger: Ledger,
        budget_seconds: float,
        *,
        hook: Callable[[str], None] | None = None,
    ) -> None:
        if not budget_seconds > 0:
            raise ValueError(f"budget_seconds: expected a positive number, got {budget_seconds!r}")
        self._client = client
        self._ledger = ledger
        self._budget = float(budget_seconds)
        self._hook = hook or (lambda point: None)
        self._server_remaining = float("inf")
        self._reported: set[str] = {s.unique_id for s in ledger.entries(*TERMINAL_STATES)}

    def __repr__(self) -> str:
        return (f"JobsOracle(ledger={str(self._ledger.path)!r}, budget_seconds={self._budget:g}, "
                f"committed={self.budget_committed():g})")

    @property
    def ledger(self) -> Ledger:
        """The durable ledger."""
        return self._ledger

    @property
    def client(self) -> JobsApiClient:
        """The HTTP client."""
        return self._client

    @property
    def budget_unit(self) -> str:
        """Seconds of B200 time."""
        return "seconds"

    @property
    def budget_total(self) -> float:
        """The client's seconds budget."""
        return self._budget

    def budget_committed(self) -> float:
        """Charges of ended runs plus reservations of active (and recorded) ones, in seconds."""
        return float(sum(s.charged_seconds for s in self._ledger.entries()))

    def remaining(self) -> float:
        """Seconds that may still be reserved (the smaller of the client's and the server's)."""
        return max(min(self._budget - self.budget_committed(), self._server_remaining), 0.0)

    def refresh_budget(self) -> float:
        """Read ``GET /budget``; returns the server's remaining seconds."""
        self._server_remaining = float(self._client.budget().remaining_seconds)
        return self._server_remaining

    # -- submissions ---------------------------------------------------------------------------

    def submit(self, config: TrainingConfig) -> str:
        """Record, then send ``config``; returns its key (see the module docstring).

        Raises
        ------
        ApiValidationError
            The server's models refuse it (nothing recorded or sent).
        BudgetExceededError
            Its reservation does not fit the client's or the server's budget.
        """
        cfg = validate_training_config(config)
        known = self._ledger.get(cfg.unique_id)
        if known is not None and known.state != "refused":
            return known.unique_id
        need = float(cfg.max_runtime_seconds)
        if need > self.remaining():
            raise BudgetExceededError(
                f"reservation of {need:g} s refused locally: {self.budget_committed():g} of "
                f"{self._budget:g} s committed, server remaining {self._server_remaining:g} s"
            )
        row = self._ledger.record(cfg)
        self._hook("recorded")
        self._send(row)
        return row.unique_id

    def _send(self, row: Submission) -> None:
        try:
            response = self._client.submit(row.config)
        except DuplicateExperimentError:
            logger.info("409 for %s: already on the server, fetching it", row.unique_id)
            self.sync(resend=False)
            if self._ledger.get(row.unique_id).state == "recorded":
                raise LedgerError(
                    f"the server answered 409 for {row.unique_id} but does not list it"
                ) from None
            return
        except (BudgetExceededError, ApiValidationError) as exc:
            self._ledger.refuse(row.unique_id, str(exc))
            summary = getattr(exc, "budget_summary", None)
            if summary:
                self._server_remaining = float(summary["remaining_seconds"])
            raise
        self._server_remaining = float(response.budget_summary.remaining_seconds)
        self._hook("sent")
        experiment = self._client.experiment(response.experiment_id)
        self._ledger.attach(experiment, note="submitted")

    def sync(self, *, resend: bool = True) -> list[Submission]:
        """Reconcile the ledger with ``GET /experiments``; returns rows that changed state.

        With ``resend``, rows still ``recorded`` that the server does not list are sent now.
        """
        remote = self._client.experiments()
        changed = []
        for experiment in remote:
            row, moved = self._ledger.attach(experiment, note="reconciled")
            if moved:
                changed.append(row)
        if resend:
            on_server = {e.training_config.unique_id for e in remote}
            for row in self._ledger.entries("recorded"):
                if row.unique_id not in on_server:
                    logger.info("sending %s again: recorded, not on the server", row.unique_id)
                    try:
                        self._send(row)
                    except (BudgetExceededError, ApiValidationError) as exc:
                        logger.warning("recorded submission %s refused: %s", row.unique_id, exc)
        return changed

    # -- the ExperimentOracle interface --------------------------------------------------------

    def in_flight(self) -> list[TrainingConfig]:
        """Configurations of rows that are recorded, queued or running."""
        return [s.config for s in self._ledger.entries("recorded", *ACTIVE_STATES)]

    def poll(self) -> list[ExperimentOutcome]:
        """Sync with the server; return the runs that ended since the last poll."""
        self.sync()
        new = []
        for sub in self._ledger.entries(*TERMINAL_STATES):
            if sub.unique_id not in self._reported:
                self._reported.add(sub.unique_id)
                new.append(outcome_of(sub))
        return new

    def outcomes(self) -> list[ExperimentOutcome]:
        """Every completed or failed run, in recording order."""
        return [outcome_of(s) for s in self._ledger.entries(*TERMINAL_STATES)]

    def submit_final(
        self, config: TrainingConfig, predicted_final_loss: float
    ) -> FinalSubmissionResponse:
        """``POST /final_submission``, recorded in the ledger before and after."""
        cfg = validate_training_config(config)
        seq = self._ledger.record_final(
            {"training_config": cfg.model_dump(mode="json"),
             "predicted_final_loss": float(predicted_final_loss)}
        )
        response = self._client.submit_final(cfg, predicted_final_loss)
        self._ledger.final_response(seq, response.model_dump(mode="json"))
        return response

    def close(self) -> None:
        """Close the ledger (the client belongs to the caller)."""
        self._ledger.close()

"""The 2026 course API, simulated: FastAPI endpoints and a dispatcher on an accelerated clock.

Endpoints, schemas, status codes, messages and check order follow ``shared/API_2026.md``:
malformed JSON (422) before the key (401 ``missing X-API-Key`` / ``invalid API key``), then
body and path validation (422, FastAPI's detail list; cross-field errors at ``loc ["body"]``),
then the handler: on ``POST /submit`` the budget (400 with an object detail) before the duplicate
(409). ``GET /experiment/{id}`` answers 404 ``not found`` for a missing id and for another key's.

The :class:`Dispatcher` thread moves experiments queued -> running -> completed | failed on the
store's simulated clock: a queued experiment starts after ``dispatch_latency_seconds`` (at most
``max_concurrent`` run at once, picked in the course's fair-share order), spends the truth's
uncharged setup time, then reveals one validation loss per chunk at the times the truth's
runtime model gives. The timeout rule is the course worker's: the clock is checked before every
chunk and after the last (``failed/timeout``, partial curve at ``status.reason``, charged
``max_runtime_seconds``), and a watchdog fires at ``1.05 * max + 10`` s. Out-of-memory runs fail
before their clock starts (charged the 1-second minimum). Everything is derived from the stored
rows and the deterministic truth, so after a restart the dispatcher simply carries on.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse

from bayes_scaling.api2026.schemas import (
    BudgetSummary,
    CompletedStatus,
    ExperimentResponse,
    FailedStatus,
    FinalSubmissionRequest,
    FinalSubmissionResponse,
    QueuedStatus,
    RunningStatus,
    SubmitResponse,
    TrainingConfig,
)
from bayes_scaling.simulator.store2026 import ExperimentRow, Store2026, iso
from bayes_scaling.simulator.truth2026 import RunOutcome, Truth2026, simulate_run

__all__ = [
    "Dispatcher",
    "FinishPlan",
    "create_app_2026",
    "experiment_response",
    "fair_share_order",
    "plan_finish",
]

logger = logging.getLogger(__name__)

DUPLICATE_MESSAGE = "experiment already exists for this training config"


@dataclass(frozen=True, kw_only=True)
class FinishPlan:
    """How a run ends, in seconds after its training clock starts.

    ``at`` is when the worker posts the result; ``used_runtime_seconds`` what it reports;
    ``val_losses`` the losses known then.
    """

    status: str
    at: float
    used_runtime_seconds: float
    val_losses: tuple[float, ...]
    reason: dict[str, Any] | None


def plan_finish(outcome: RunOutcome, max_runtime_seconds: float) -> FinishPlan:
    """Apply the course worker's timeout rule to a simulated run (spec §2.4)."""
    if outcome.oom:
        return FinishPlan(
            status="failed",
            at=0.0,
            used_runtime_seconds=0.0,
            val_losses=(),
            reason={"reason": "unexpected", "failure": outcome.failure},
        )
    watchdog = 1.05 * max_runtime_seconds + 10.0
    start = 0.0
    for i, end in enumerate(outcome.chunk_end_seconds):
        if start > max_runtime_seconds:
            return _timeout(start, outcome.val_losses[:i])
        if end > watchdog:
            return _timeout(watchdog, outcome.val_losses[:i])
        start = end
    if outcome.train_seconds > max_runtime_seconds:
        return _timeout(outcome.train_seconds, outcome.val_losses)
    return FinishPlan(
        status="completed",
        at=outcome.train_seconds,
        used_runtime_seconds=outcome.train_seconds,
        val_losses=outcome.val_losses,
        reason=None,
    )


def _timeout(elapsed: float, losses: tuple[float, ...]) -> FinishPlan:
    return FinishPlan(
        status="failed",
        at=elapsed,
        used_runtime_seconds=elapsed,
        val_losses=losses,
        reason={"reason": "timeout", "partial_val_losses": list(losses)},
    )


def fair_share_order(
    running_per_key: dict[str, int], queued: list[tuple[str, float, int]]
) -> list[int]:
    """Queued experiment ids in the course dispatcher's order (spec §2.2).

    Each queued experiment ``(key, queued_at, id)`` gets the rank
    ``running(key) + position in the key's queue (1-based, by queued_at then id) - 1``; the
    order is by ``(rank, queued_at, id)``.
    """
    position: dict[str, int] = {}
    ranked = []
    for key, queued_at, exp_id in sorted(queued, key=lambda q: (q[1], q[2])):
        position[key] = position.get(key, 0) + 1
        ranked.append((running_per_key.get(key, 0) + position[key] - 1, queued_at, exp_id))
    return [exp_id for _, _, exp_id in sorted(ranked)]


class Dispatcher:
    """The queue and the workers, on the store's simulated clock, in one background thread.

    Parameters
    ----------
    store, truth
        Where experiments live and what their runs do.
    max_concurrent
        Global cap on running experiments (100 on the course's server).
    dispatch_latency_seconds
        Simulated seconds from queued to running when a slot is free.
    tick_seconds
        Wall seconds between two passes.
    """

    def __init__(
        self,
        store: Store2026,
        truth: Truth2026,
        *,
        max_concurrent: int = 100,
        dispatch_latency_seconds: float = 1.3,
        tick_seconds: float = 0.02,
    ) -> None:
        self.store = store
        self.truth = truth
        self.max_concurrent = int(max_concurrent)
        self.dispatch_latency_seconds = float(dispatch_latency_seconds)
        self.tick_seconds = float(tick_seconds)
        self._plans: dict[int, tuple[RunOutcome, FinishPlan]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="dispatcher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # keep serving; the next pass retries from the stored rows
                logger.exception("dispatcher pass failed")
            self._stop.wait(self.tick_seconds)

    def _plan(self, row: ExperimentRow) -> tuple[RunOutcome, FinishPlan]:
        if row.id not in self._plans:
            outcome = simulate_run(self.truth, row.config)
            self._plans[row.id] = (outcome, plan_finish(outcome, row.config.max_runtime_seconds))
        return self._plans[row.id]

    def step(self) -> None:
        """One pass: advance running experiments, then fill free slots from the queue."""
        now = self.store.clock.now()
        active = self.store.active()
        running_per_key: dict[str, int] = {}
        for row in active:
            if row.status == "running" and self._advance(row, now):
                running_per_key[row.key_digest] = running_per_key.get(row.key_digest, 0) + 1
        queued = {row.id: row for row in active if row.status == "queued"}
        free = self.max_concurrent - sum(running_per_key.values())
        if free <= 0 or not queued:
            return
        order = fair_share_order(
            running_per_key, [(row.key_digest, row.queued_at, row.id) for row in queued.values()]
        )
        for exp_id in order[:free]:
            row = queued[exp_id]
            if now >= row.queued_at + self.dispatch_latency_seconds:
                run_id = "fc-" + uuid.uuid4().hex[:26].upper()
                self.store.mark_running(row.id, run_id, now)

    def _advance(self, row: ExperimentRow, now: float) -> bool:
        """Reveal finished chunks or finish the run; True if it is still running."""
        outcome, plan = self._plan(row)
        train_start = (row.dispatched_at or now) + outcome.setup_seconds
        elapsed = now - train_start
        if elapsed >= plan.at:
            self.store.finish(
                row.id,
                status=plan.status,
                used_runtime_seconds=plan.used_runtime_seconds,
                finished_at=train_start + plan.at,
                val_losses=list(plan.val_losses),
                reason=plan.reason,
            )
            self._plans.pop(row.id, None)
            return False
        known = sum(1 for end in outcome.chunk_end_seconds if end <= elapsed)
        known = min(known, len(plan.val_losses))
        if known != len(row.val_losses):
            self.store.set_val_losses(row.id, list(outcome.val_losses[:known]))
        return True


def experiment_response(row: ExperimentRow) -> ExperimentResponse:
    """The wire form of a stored experiment (its status in one of the four shapes)."""
    queued_at = iso(row.queued_at)
    if row.status == "queued":
        status: Any = QueuedStatus(queued_at=queued_at)
    else:
        common = {
            "queued_at": queued_at,
            "dispatched_at": iso(row.dispatched_at),
            "run_id": row.run_id,
        }
        if row.status == "running":
            status = RunningStatus(**common, val_losses=row.val_losses)
        elif row.status == "completed":
            status = CompletedStatus(
                **common,
                used_runtime_seconds=row.used_runtime_seconds,
                val_losses=row.val_losses,
                completed_at=iso(row.finished_at),
            )
        else:
            status = FailedStatus(
                **common,
                used_runtime_seconds=row.used_runtime_seconds,
                failed_at=iso(row.finished_at),
                reason=row.reason,
            )
    return ExperimentResponse(experiment_id=row.id, training_config=row.config, status=status)


_DASHBOARD = """<!doctype html>
<html><head><meta charset="utf-8"><title>Scaling Experiments Dashboard</title></head>
<body><h1>Scaling Experiments Dashboard</h1>
<p>Simulated CS336 2026 training API. Enter a key to list its experiments.</p>
<input id="key" placeholder="X-API-Key"><button onclick="load()">load</button>
<pre id="out"></pre>
<script>
async function load() {
  const h = {"X-API-Key": document.getElementById("key").value};
  const b = await (await fetch("/budget", {headers: h})).json();
  const e = await (await fetch("/experiments", {headers: h})).json();
  document.getElementById("out").textContent = JSON.stringify({budget: b, experiments: e}, null, 2);
}
</script></body></html>
"""


def create_app_2026(
    *,
    store: Store2026,
    truth: Truth2026,
    allowed_keys: Iterable[str],
    dispatcher: Dispatcher | None = None,
) -> FastAPI:
    """Build the simulated 2026 API; the dispatcher starts and stops with the app's lifespan.

    Parameters
    ----------
    store
        Experiments, budgets and the clock (a file makes them survive restarts).
    truth
        What runs do (:mod:`bayes_scaling.simulator.truth2026`).
    allowed_keys
        The accepted ``X-API-Key`` values.
    dispatcher
        The queue runner (default: a :class:`Dispatcher` on ``store`` and ``truth``).
    """
    keys = frozenset(str(k) for k in allowed_keys)
    if not keys:
        raise ValueError("expected at least one allowed API key, got none")
    dispatcher = dispatcher or Dispatcher(store, truth)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        dispatcher.start()
        try:
            yield
        finally:
            dispatcher.stop()

    app = FastAPI(title="CS336 Assignment 3 Backend", lifespan=lifespan)
    app.state.store = store
    app.state.dispatcher = dispatcher
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[
            "http://localhost:8000",
            "http://localhost:8080",
            "http://hyperturing.stanford.edu:8000",
            "null",
        ],
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["X-API-Key", "Content-Type"],
        allow_private_network=True,
    )

    @app.middleware("http")
    async def request_id(request: Request, call_next):
        rid = request.headers.get("X-Request-ID") or uuid.uuid4().hex
        response = await call_next(request)
        response.headers["X-Request-ID"] = rid
        return response

    def user(x_api_key: str | None = Header(default=None, alias="X-API-Key")) -> str:
        if not x_api_key:
            raise HTTPException(status_code=401, detail="missing X-API-Key")
        if x_api_key not in keys:
            raise HTTPException(status_code=401, detail="invalid API key")
        return x_api_key

    @app.post("/submit", response_model=SubmitResponse)
    def submit(config: TrainingConfig, api_key: str = Depends(user)) -> SubmitResponse:
        outcome = store.submit(api_key, config)
        if outcome.kind == "budget":
            raise HTTPException(
                status_code=400,
                detail={"message": "insufficient budget", "budget_summary": outcome.budget},
            )
        if outcome.kind == "duplicate":
            raise HTTPException(status_code=409, detail=DUPLICATE_MESSAGE)
        return SubmitResponse(
            experiment_id=outcome.experiment_id, budget_summary=BudgetSummary(**outcome.budget)
        )

    @app.get("/experiments", response_model=list[ExperimentResponse])
    def experiments(api_key: str = Depends(user)) -> list[ExperimentResponse]:
        return [experiment_response(row) for row in store.experiments(api_key)]

    @app.get("/experiment/{experiment_id}", response_model=ExperimentResponse)
    def experiment(experiment_id: int, api_key: str = Depends(user)) -> ExperimentResponse:
        row = store.experiment(api_key, experiment_id)
        if row is None:
            raise HTTPException(status_code=404, detail="not found")
        return experiment_response(row)

    @app.get("/budget", response_model=BudgetSummary)
    def budget(api_key: str = Depends(user)) -> BudgetSummary:
        return BudgetSummary(**store.budget(api_key))

    @app.get("/final_submission", response_model=FinalSubmissionResponse | None)
    def get_final(api_key: str = Depends(user)) -> FinalSubmissionResponse | None:
        stored = store.final(api_key)
        if stored is None:
            return None
        request_json, submitted_at = stored
        body = json.loads(request_json)
        return FinalSubmissionResponse(**body, submitted_at=iso(submitted_at))

    @app.post("/final_submission", response_model=FinalSubmissionResponse)
    def post_final(
        submission: FinalSubmissionRequest, api_key: str = Depends(user)
    ) -> FinalSubmissionResponse:
        submitted_at = store.save_final(api_key, submission.model_dump_json())
        return FinalSubmissionResponse(
            training_config=submission.training_config,
            predicted_final_loss=submission.predicted_final_loss,
            submitted_at=iso(submitted_at),
        )

    @app.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> str:
        return _DASHBOARD

    return app

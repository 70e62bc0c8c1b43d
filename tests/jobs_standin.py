"""A small in-test stand-in of the 2026 job API (the real one is ``serve --api 2026``).

Enough of the contract for the client side: header auth (401), FastAPI's 422 on the real
schemas, 400 with the budget object, 409 on an equal configuration key, 404 across keys, the
budget's reservation and refund, and a lifecycle on an accelerated clock (a run of ``t`` seconds
ends ``t / time_scale`` wall seconds after submission, no setup delay; a run whose runtime
exceeds its reservation fails with a timeout and the partial curve). Curves and runtimes come
from the package's 2026 truth (``simulator.truth2026``, default constants); OOM is not emulated.
Optionally fails the next ``fail_next`` POSTs with 503 after creating the experiment (to test
retries that end in 409).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse

from bayes_scaling.api2026.schemas import FinalSubmissionRequest, TrainingConfig
from bayes_scaling.simulator.truth2026 import Truth2026, simulate_run

TRUTH = Truth2026()


def true_seconds(cfg: TrainingConfig) -> float:
    return simulate_run(TRUTH, cfg).train_seconds


def true_curve(cfg: TrainingConfig) -> list[float]:
    return list(simulate_run(TRUTH, cfg).val_losses)


class StandIn:
    def __init__(self, keys=("k1", "k2"), *, budget: float = 43200.0, time_scale: float = 1000.0):
        self.keys = set(keys)
        self.budget = budget
        self.time_scale = time_scale
        self.lock = threading.Lock()
        self.rows: list[dict[str, Any]] = []
        self.finals: dict[str, dict] = {}
        self.submits = 0
        self.fail_next = 0
        self.app = self._build()

    def _status(self, row) -> dict[str, Any]:
        cfg: TrainingConfig = row["config"]
        elapsed = (time.monotonic() - row["t0"]) * self.time_scale
        need, curve = row["seconds"], row["curve"]
        base = {"queued_at": row["queued_at"], "dispatched_at": row["queued_at"],
                "run_id": f"fc-{row['id']}"}
        limit = cfg.max_runtime_seconds
        if need > limit and elapsed >= limit:
            done = int(cfg.n_evals * limit / need)
            return {"status_type": "failed", **base, "used_runtime_seconds": limit * 1.01,
                    "failed_at": row["queued_at"],
                    "reason": {"reason": "timeout", "partial_val_losses": curve[:done]}}
        if elapsed >= need:
            return {"status_type": "completed", **base, "used_runtime_seconds": need,
                    "val_losses": curve, "completed_at": row["queued_at"]}
        done = int(cfg.n_evals * elapsed / need)
        return {"status_type": "running", **base, "val_losses": curve[:done]}

    def _charge(self, row) -> float:
        status = self._status(row)
        limit = row["config"].max_runtime_seconds
        if status["status_type"] in ("completed", "failed"):
            return min(max(1.0, status["used_runtime_seconds"]), limit)
        return limit

    def budget_of(self, key: str) -> dict[str, float]:
        used = sum(self._charge(r) for r in self.rows if r["key"] == key)
        return {"used_seconds": used, "remaining_seconds": self.budget - used,
                "total_budget_seconds": self.budget}

    def _response(self, row) -> dict[str, Any]:
        return {"experiment_id": row["id"],
                "training_config": row["config"].model_dump(mode="json"),
                "status": self._status(row)}

    def _build(self) -> FastAPI:
        app = FastAPI()
        me = self

        def user(x_api_key: str | None) -> str:
            if not x_api_key:
                raise HTTPException(401, "missing X-API-Key")
            if x_api_key not in me.keys:
                raise HTTPException(401, "invalid API key")
            return x_api_key

        @app.middleware("http")
        async def auth_first(request: Request, call_next):
            key = request.headers.get("x-api-key")
            if not key:
                return JSONResponse({"detail": "missing X-API-Key"}, status_code=401)
            if key not in me.keys:
                return JSONResponse({"detail": "invalid API key"}, status_code=401)
            return await call_next(request)

        @app.post("/submit")
        def submit(config: TrainingConfig, x_api_key: str | None = Header(None)):
            key = user(x_api_key)
            with me.lock:
                me.submits += 1
                budget = me.budget_of(key)
                if config.max_runtime_seconds > budget["remaining_seconds"]:
                    raise HTTPException(400, {"message": "insufficient budget",
                                              "budget_summary": budget})
                uid = config.unique_id
                if any(r["key"] == key and r["uid"] == uid for r in me.rows):
                    raise HTTPException(409, "experiment already exists for this training config")
                row = {"id": len(me.rows) + 1, "key": key, "uid": uid, "config": config,
                       "t0": time.monotonic(), "queued_at": "2026-12-01T00:00:00.000001Z",
                       "seconds": true_seconds(config), "curve": true_curve(config)}
                me.rows.append(row)
                if me.fail_next:
                    me.fail_next -= 1
                    raise HTTPException(503, "flaky")
                return {"experiment_id": row["id"], "budget_summary": me.budget_of(key)}

        @app.get("/experiments")
        def experiments(x_api_key: str | None = Header(None)):
            key = user(x_api_key)
            with me.lock:
                return [me._response(r) for r in me.rows if r["key"] == key]

        @app.get("/experiment/{experiment_id}")
        def experiment(experiment_id: int, x_api_key: str | None = Header(None)):
            key = user(x_api_key)
            with me.lock:
                for r in me.rows:
                    if r["id"] == experiment_id and r["key"] == key:
                        return me._response(r)
            raise HTTPException(404, "not found")

        @app.get("/budget")
        def budget(x_api_key: str | None = Header(None)):
            key = user(x_api_key)
            with me.lock:
                return me.budget_of(key)

        @app.get("/final_submission")
        def get_final(x_api_key: str | None = Header(None)):
            return me.finals.get(user(x_api_key))

        @app.post("/final_submission")
        def post_final(body: FinalSubmissionRequest, x_api_key: str | None = Header(None)):
            out = {**body.model_dump(mode="json"), "submitted_at": "2026-12-01T00:00:00Z"}
            me.finals[user(x_api_key)] = out
            return out

        return app

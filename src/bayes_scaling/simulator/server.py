"""The simulator as an HTTP server with the training API's contract (DESIGN.md section 2).

``GET /loss``, ``GET /total_flops_used`` and ``GET /previous_runs``, answered from a
:class:`~bayes_scaling.simulator.truth.Truth` and charged in a
:class:`~bayes_scaling.simulator.store.RunStore`.

Every error is the API's ``{"message": ...}`` shape: query parameters are read from
``request.query_params`` by hand, so FastAPI's own validation responses never appear. The order of
checks on ``/loss`` is: the key (422), the parameters' presence and types, then the ranges in the
API's order (404, the API's messages), then the budget (400, nothing charged).

JSON has no NaN or infinity: a loss that is not a finite number (only a broken truth gives one;
:func:`~bayes_scaling.simulator.truth.load_truth` refuses such truths) is charged and answered as
``null``, which the client records as a failed query. No schema endpoint is served
(``/openapi.json``, ``/docs`` and ``/redoc`` are off).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bayes_scaling.errors import InvalidConfigError
from bayes_scaling.simulator.store import RunStore
from bayes_scaling.simulator.truth import Truth, observed_loss
from bayes_scaling.space import CONFIG_FIELDS, parse_config, validate_config

__all__ = ["BUDGET_STATUS", "create_app"]

logger = logging.getLogger(__name__)

#: Status of a refused over-budget query (the real API's code is not documented; 400 is ours).
BUDGET_STATUS = 400


def _message(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"message": message})


def create_app(
    truth: Truth,
    *,
    store: RunStore,
    allowed_keys: Iterable[str],
    budget_flops: float,
) -> FastAPI:
    """Build the simulated training API.

    Parameters
    ----------
    truth
        The simulator's truth; losses are :func:`~bayes_scaling.simulator.truth.observed_loss`.
    store
        Where runs and spend live (a file makes them survive restarts).
    allowed_keys
        The accepted API keys; any other key is answered 422.
    budget_flops
        The FLOP budget of each key.
    """
    keys = frozenset(str(k) for k in allowed_keys)
    if not keys:
        raise ValueError("expected at least one allowed API key, got none")
    if not budget_flops > 0:
        raise ValueError(f"expected a positive budget_flops, got {budget_flops!r}")

    app = FastAPI(title="bayes_scaling simulated training API", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.store = store
    app.state.budget_flops = float(budget_flops)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _message(422, "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _message(exc.status_code, str(exc.detail))

    def _check_key(request: Request) -> tuple[str | None, JSONResponse | None]:
        api_key = request.query_params.get("api_key")
        if api_key is None or api_key not in keys:
            shown = "" if api_key is None else api_key
            return None, _message(422, f"Invalid API key provided: {shown}")
        return api_key, None

    @app.get("/loss")
    def loss(request: Request) -> JSONResponse:
        api_key, error = _check_key(request)
        if error is not None:
            return error
        query = request.query_params
        raw = {name: query[name] for name in CONFIG_FIELDS if name in query}
        try:
            config = validate_config(parse_config(raw))
        except InvalidConfigError as exc:
            return _message(404, str(exc))
        value = observed_loss(truth, config)
        result = store.charge(api_key, config, value, budget_flops)
        if not result.accepted:
            logger.info(
                "refused a query of %d FLOPs: %.6g used of %.6g",
                config.train_flops,
                result.total_flops_used,
                budget_flops,
            )
            return _message(
                BUDGET_STATUS,
                f"Query would exceed the FLOPs budget: total_flops_used {result.total_flops_used:g}"
                f" + train_flops {config.train_flops:g} > budget {budget_flops:g};"
                " nothing was charged",
            )
        answer = result.loss if math.isfinite(result.loss) else None
        return JSONResponse({"loss": answer, "total_flops_used": result.total_flops_used})

    @app.get("/total_flops_used")
    def total_flops_used(request: Request) -> JSONResponse:
        api_key, error = _check_key(request)
        if error is not None:
            return error
        return JSONResponse(store.total_flops_used(api_key))

    @app.get("/previous_runs")
    def previous_runs(request: Request) -> JSONResponse:
        api_key, error = _check_key(request)
        if error is not None:
            return error
        rows = [
            {**row, "loss": row["loss"] if math.isfinite(row["loss"]) else None}
            for row in store.previous_runs(api_key)
        ]
        return JSONResponse({"previous_runs": rows})

    return app

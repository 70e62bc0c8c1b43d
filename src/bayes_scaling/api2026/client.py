"""HTTP client of the 2026 job API (``shared/API_2026.md``): validation, retries, typed errors.

- **Key.** ``X-API-Key`` from ``$BAYES_SCALING_API_KEY`` (or the ``api_key`` argument). It travels
  only in that header; reprs, log records and exception messages never contain it.
- **Bodies.** Every body is validated here first with the server's own models
  (:mod:`bayes_scaling.api2026.schemas`): an invalid configuration raises
  :class:`~bayes_scaling.errors.ApiValidationError` with the server's messages (FastAPI's 422
  list, ``loc`` starting with ``"body"``) and costs no request. What is sent is the *validated*
  model dumped in full, so every AdamW field travels explicitly and the server cannot read an
  AdamW configuration as SGD (the union trap of spec §1.3).
- **Errors.** 400 -> :class:`~bayes_scaling.errors.BudgetExceededError` (``.budget_summary``),
  401 -> ``ApiAuthError``, 404 -> ``ExperimentNotFoundError``, 409 -> ``DuplicateExperimentError``,
  422 -> ``ApiValidationError`` (``.errors`` is the list), 5xx/429 after the retries ->
  ``ApiUnreachableError``.
- **Retries.** Connection errors, read timeouts, 5xx and 429 only, with exponential backoff and
  jitter (urllib3 ``Retry``; ``Retry-After`` honoured). A retried ``POST /submit`` whose first
  attempt did reach the server answers 409, which the ledger treats as "already exists: fetch it".
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import requests
from pydantic import ValidationError
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bayes_scaling.api.client import KEY_ENV, api_key_or_env
from bayes_scaling.api2026.schemas import (
    BudgetSummary,
    ExperimentResponse,
    FinalSubmissionRequest,
    FinalSubmissionResponse,
    SubmitResponse,
    TrainingConfig,
)
from bayes_scaling.errors import (
    ApiAuthError,
    ApiError,
    ApiUnreachableError,
    ApiValidationError,
    BudgetExceededError,
    DuplicateExperimentError,
    ExperimentNotFoundError,
)

__all__ = [
    "KEY_ENV",
    "RETRY_STATUSES",
    "JobsApiClient",
    "detect_api",
    "validate_training_config",
]

logger = logging.getLogger(__name__)

#: Statuses that are retried (with backoff and jitter); every other status is final.
RETRY_STATUSES = (429, 500, 502, 503, 504)


def _fastapi_errors(exc: ValidationError, prefix: tuple[str, ...]) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors(include_url=False):
        item = {"type": err["type"], "loc": [*prefix, *err["loc"]], "msg": err["msg"]}
        if "ctx" in err:
            item["ctx"] = {k: str(v) for k, v in err["ctx"].items()}
        errors.append(item)
    return errors


def _first_message(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "invalid request body"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", []))
    return f"{where}: {first.get('msg')}"


def validate_training_config(
    config: TrainingConfig | Mapping[str, Any], *, prefix: tuple[str, ...] = ("body",)
) -> TrainingConfig:
    """Validate ``config`` exactly as the server would; return the validated model.

    Raises
    ------
    ApiValidationError
        With the server's messages and FastAPI's 422 list in ``.errors`` (cross-field errors
        read ``"Value error, <message>"`` at ``loc ["body"]``).
    """
    if isinstance(config, TrainingConfig):
        return config
    try:
        return TrainingConfig.model_validate(dict(config))
    except ValidationError as exc:
        errors = _fastapi_errors(exc, prefix)
        raise ApiValidationError(_first_message(errors), errors) from None


def _retry(max_retries: int, backoff: float, backoff_max: float) -> Retry:
    return Retry(
        total=max_retries,
        connect=max_retries,
        read=max_retries,
        status=max_retries,
        other=0,
        redirect=0,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "POST"}),
        backoff_factor=backoff,
        backoff_max=backoff_max,
        backoff_jitter=backoff,
        respect_retry_after_header=True,
        raise_on_status=False,
    )


class JobsApiClient:
    """A client of one 2026 job API with one key.

    Parameters
    ----------
    base_url : str
        E.g. ``http://hyperturing.stanford.edu:8000`` or a local ``serve --api 2026``.
    api_key : str, optional
        The key; ``None`` reads ``$BAYES_SCALING_API_KEY``.
    timeout : float
        Seconds per request (connect and read).
    max_retries : int
        Retries after the first attempt (connection errors, read timeouts, 5xx, 429).
    backoff : float
        Base of the exponential backoff in seconds (also the jitter's width).
    backoff_max : float
        Longest wait between two attempts.

    Raises
    ------
    InvalidApiKeyError
        If no key is given and the environment holds none.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 6,
        backoff: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        api_key = api_key_or_env(api_key)
        if not timeout > 0:
            raise ValueError(f"timeout: expected a positive number, got {timeout!r}")
        if max_retries < 0:
            raise ValueError(f"max_retries: expected an integer >= 0, got {max_retries!r}")
        if backoff < 0 or backoff_max < 0:
            raise ValueError(f"backoff: expected numbers >= 0, got {backoff!r}, {backoff_max!r}")
        self._base_url = base_url.rstrip("/")
        self.__api_key = api_key
        self._timeout = float(timeout)
        self._session = requests.Session()
        adapter = HTTPAdapter(max_retries=_retry(int(max_retries), backoff, backoff_max))
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"JobsApiClient(base_url={self._base_url!r}, api_key=***)"

    @property
    def base_url(self) -> str:
        """The API's base URL."""
        return self._base_url

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    def __enter__(self) -> JobsApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- endpoints -----------------------------------------------------------------------------

    def submit(self, config: TrainingConfig | Mapping[str, Any]) -> SubmitResponse:
        """``POST /submit`` a validated configuration; returns the id and the budget after it.

        Raises
        ------
        ApiValidationError
            Locally (nothing sent) or from the server.
        BudgetExceededError
            400 ``insufficient budget`` (``.budget_summary`` holds the server's summary).
        DuplicateExperimentError
            409: this key already has an experiment with the same configuration.
        """
        validated = validate_training_config(config)
        body = self._request("POST", "/submit", json=validated.model_dump(mode="json"))
        return self._parse(SubmitResponse, body, "/submit")

    def experiments(self) -> list[ExperimentResponse]:
        """``GET /experiments``: all of the key's experiments, any status."""
        body = self._request("GET", "/experiments")
        if not isinstance(body, list):
            raise ApiError("GET /experiments: expected a JSON list")
        return [self._parse(ExperimentResponse, item, "/experiments") for item in body]

    def experiment(self, experiment_id: int) -> ExperimentResponse:
        """``GET /experiment/{id}``; 404 -> :class:`ExperimentNotFoundError`."""
        body = self._request("GET", f"/experiment/{int(experiment_id)}")
        return self._parse(ExperimentResponse, body, "/experiment")

    def budget(self) -> BudgetSummary:
        """``GET /budget``: seconds used (active reservations included), remaining and total."""
        return self._parse(BudgetSummary, self._request("GET", "/budget"), "/budget")

    def final_submission(self) -> FinalSubmissionResponse | None:
        """``GET /final_submission``: the stored final submission, or None."""
        body = self._request("GET", "/final_submission")
        if body is None:
            return None
        return self._parse(FinalSubmissionResponse, body, "/final_submission")

    def submit_final(
        self, config: TrainingConfig | Mapping[str, Any], predicted_final_loss: float
    ) -> FinalSubmissionResponse:
        """``POST /final_submission`` (replaces any earlier one; costs no budget)."""
        validated = validate_training_config(config, prefix=("body", "training_config"))
        try:
            request = FinalSubmissionRequest(
                training_config=validated, predicted_final_loss=predicted_final_loss
            )
        except ValidationError as exc:
            errors = _fastapi_errors(exc, ("body",))
            raise ApiValidationError(_first_message(errors), errors) from None
        body = self._request("POST", "/final_submission", json=request.model_dump(mode="json"))
        return self._parse(FinalSubmissionResponse, body, "/final_submission")

    # -- transport -----------------------------------------------------------------------------

    @staticmethod
    def _parse(model, body: Any, where: str):
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise ApiError(
                f"unexpected {where} response: {exc.error_count()} schema error(s)"
            ) from None

    def _request(self, method: str, path: str, *, json: Any = None) -> Any:
        url = f"{self._base_url}{path}"
        try:
            response = self._session.request(
                method, url, json=json, timeout=self._timeout,
                headers={"X-API-Key": self.__api_key},
            )
        except requests.exceptions.RetryError as exc:
            raise ApiUnreachableError(f"{method} {url}: gave up after retries") from exc
        except (requests.ConnectionError, requests.Timeout):
            raise ApiUnreachableError(f"{method} {url}: unreachable after retries") from None
        except requests.RequestException as exc:
            raise ApiError(f"{method} {url} failed: {type(exc).__name__}") from None
        return self._decode(method, path, response)

    def _decode(self, method: str, path: str, response: requests.Response) -> Any:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if status == 200:
            if body is None and response.text.strip() != "null":
                raise ApiError(f"{method} {path}: the response is not JSON")
            return body
        detail = body.get("detail") if isinstance(body, dict) else None
        text = str(detail if detail is not None else response.text[:200]).replace(
            self.__api_key, "***"
        )
        if status == 400 and isinstance(detail, dict):
            err = BudgetExceededError(f"{method} {path}: {detail.get('message', 'refused')}")
            err.budget_summary = detail.get("budget_summary")
            raise err
        if status == 401:
            raise ApiAuthError(f"{method} {path}: 401 {text}")
        if status == 404:
            raise ExperimentNotFoundError(f"{method} {path}: 404 {text}")
        if status == 409:
            raise DuplicateExperimentError(f"{method} {path}: 409 {text}")
        if status == 422:
            errors = detail if isinstance(detail, list) else []
            raise ApiValidationError(f"{method} {path}: 422 {_first_message(errors)}", errors)
        if status in RETRY_STATUSES:
            raise ApiUnreachableError(f"{method} {path}: status {status} after retries")
        raise ApiError(f"{method} {path}: status {status}: {text}")


def detect_api(base_url: str, api_key: str | None = None, *, timeout: float = 10.0) -> str:
    """Probe which training API answers at ``base_url``: ``"2026"`` or ``"2025"``.

    ``GET /budget`` with the key in the ``X-API-Key`` header answers 200 or 401 on the 2026 API;
    anything else (the 2025 API has no ``/budget``) means 2025. The key never leaves the header.

    Raises
    ------
    ApiUnreachableError
        If nothing answers at ``base_url``.
    """
    if api_key is None:
        api_key = os.environ.get(KEY_ENV) or ""
    url = f"{base_url.rstrip('/')}/budget"
    try:
        response = requests.get(url, headers={"X-API-Key": api_key}, timeout=timeout)
    except requests.RequestException:
        raise ApiUnreachableError(f"GET {url}: no answer") from None
    if response.status_code in (200, 401):
        return "2026"
    return "2025"

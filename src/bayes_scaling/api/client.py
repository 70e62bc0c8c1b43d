"""HTTP client of the training API (DESIGN.md section 2): validation, retries, typed errors.

The API takes the key as a query parameter, so it travels in URLs. The client keeps it out of
everything it produces: exception messages and reprs name ``api_key=***``, exceptions from
``requests`` are not chained (their text holds the URL), and a filter on urllib3's connection-pool
logger redacts ``api_key=`` values from its debug records.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

import requests

from bayes_scaling.errors import (
    ApiError,
    ApiUnreachableError,
    BudgetExceededError,
    InvalidApiKeyError,
    InvalidConfigError,
)
from bayes_scaling.oracle import Observation
from bayes_scaling.space import RunConfig, parse_config, validate_config

__all__ = ["KEY_ENV", "TrainingApiClient", "api_key_or_env", "redact"]

logger = logging.getLogger(__name__)

KEY_ENV = "BAYES_SCALING_API_KEY"

_KEY_PATTERN = re.compile(r"(api_key=)[^&\s'\"]*")
_BUDGET_WORDS = re.compile(r"budget|exceed", re.IGNORECASE)


def api_key_or_env(api_key: str | None = None) -> str:
    """``api_key``, or else the value of ``$BAYES_SCALING_API_KEY``.

    Raises
    ------
    InvalidApiKeyError
        If neither holds a key.
    """
    if api_key is None:
        api_key = os.environ.get(KEY_ENV) or None
    if not api_key:
        raise InvalidApiKeyError(f"no API key given and ${KEY_ENV} is not set")
    return api_key


def redact(text: str, api_key: str | None = None) -> str:
    """``text`` with every ``api_key=`` value, and the key itself, replaced by ``***``."""
    text = _KEY_PATTERN.sub(r"\1***", text)
    if api_key:
        text = text.replace(api_key, "***")
    return text


class _RedactKeyFilter(logging.Filter):
    """Rewrites log records so that no ``api_key=`` value survives formatting."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "api_key=" in record.getMessage():
            record.msg = redact(record.getMessage())
            record.args = None
        return True


_FILTER = _RedactKeyFilter()


def _install_log_filter() -> None:
    pool_logger = logging.getLogger("urllib3.connectionpool")
    if _FILTER not in pool_logger.filters:
        pool_logger.addFilter(_FILTER)


def _answered_loss(value: Any) -> float:
    """The API's loss as a float: ``null`` (a non-finite loss, JSON has none) becomes NaN."""
    if value is None:
        return float("nan")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


class TrainingApiClient:
    """A client of one training API with one key.

    Parameters
    ----------
    base_url
        E.g. ``http://127.0.0.1:8000``.
    api_key
        The key; ``None`` reads ``$BAYES_SCALING_API_KEY``.
    timeout
        Seconds per request (connect and read).
    max_retries
        Retries after the first attempt on connection errors, timeouts and 5xx; 4xx never retry.
    backoff
        Seconds before the first retry; doubled at each further one.

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
        max_retries: int = 4,
        backoff: float = 0.5,
    ) -> None:
        api_key = api_key_or_env(api_key)
        if not timeout > 0:
            raise ValueError(f"expected a positive timeout, got {timeout!r}")
        if max_retries < 0:
            raise ValueError(f"expected max_retries >= 0, got {max_retries!r}")
        if backoff < 0:
            raise ValueError(f"expected backoff >= 0, got {backoff!r}")
        self._base_url = base_url.rstrip("/")
        self.__api_key = api_key
        self._timeout = float(timeout)
        self._max_retries = int(max_retries)
        self._backoff = float(backoff)
        self._session = requests.Session()
        _install_log_filter()

    def __repr__(self) -> str:
        return f"TrainingApiClient(base_url={self._base_url!r}, api_key=***)"

    @property
    def base_url(self) -> str:
        """The API's base URL."""
        return self._base_url

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    def __enter__(self) -> TrainingApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- endpoints -----------------------------------------------------------------------------

    def loss(self, config: RunConfig) -> tuple[float, float]:
        """Query the final loss of ``config``; returns ``(loss, total_flops_used)``.

        The configuration is validated first, so an invalid one costs no request.

        Raises
        ------
        InvalidConfigError
            Locally or from the API (404), with the API's message.
        BudgetExceededError
            The API refused the query; nothing was charged.
        InvalidApiKeyError, ApiUnreachableError, ApiError
            See :mod:`bayes_scaling.errors`.
        """
        validate_config(config)
        body = self._get("/loss", config.to_query())
        try:
            return _answered_loss(body["loss"]), float(body["total_flops_used"])
        except (KeyError, TypeError, ValueError):
            raise ApiError(f"unexpected /loss response: {self._redact(repr(body))}") from None

    def total_flops_used(self) -> float:
        """FLOPs charged to the key so far."""
        body = self._get("/total_flops_used", {})
        try:
            return float(body)
        except (TypeError, ValueError):
            raise ApiError(
                f"unexpected /total_flops_used response: {self._redact(repr(body))}"
            ) from None

    def previous_runs(self) -> list[Observation]:
        """Return the key's paid runs, in the API's order.

        A row whose configuration is outside the API's space is left out with a warning (it
        cannot be a run of this API; its spend still counts through ``total_flops_used``). A
        ``null`` loss becomes NaN, which the ledger records as a failed query.
        """
        body = self._get("/previous_runs", {})
        try:
            rows = body["previous_runs"]
            if not isinstance(rows, list):
                raise TypeError
            runs = []
            for number, row in enumerate(rows, start=1):
                try:
                    config = validate_config(parse_config(row))
                except InvalidConfigError as exc:
                    logger.warning("/previous_runs row %d left out: %s", number, exc)
                    continue
                runs.append(Observation(config=config, loss=_answered_loss(row["loss"])))
            return runs
        except (KeyError, TypeError, ValueError):
            raise ApiError("unexpected /previous_runs response") from None

    # -- transport -----------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        return redact(text, self.__api_key)

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        url = f"{self._base_url}{path}"
        query = {**params, "api_key": self.__api_key}
        attempts = self._max_retries + 1
        last_problem = ""
        for attempt in range(attempts):
            if attempt:
                delay = self._backoff * 2 ** (attempt - 1)
                logger.info(
                    "retrying GET %s in %.2fs (%s; attempt %d of %d)",
                    path,
                    delay,
                    last_problem,
                    attempt + 1,
                    attempts,
                )
                time.sleep(delay)
            try:
                response = self._session.get(url, params=query, timeout=self._timeout)
            except requests.Timeout:
                last_problem = "timed out"
                continue
            except requests.ConnectionError:
                last_problem = "connection failed"
                continue
            except requests.RequestException as exc:
                raise ApiError(f"GET {url} failed: {type(exc).__name__}") from None
            if response.status_code >= 500:
                last_problem = f"status {response.status_code}"
                continue
            return self._decode(url, response)
        raise ApiUnreachableError(
            f"GET {url} failed after {attempts} attempt(s): {last_problem}"
        )

    def _decode(self, url: str, response: requests.Response) -> Any:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        message = body.get("message") if isinstance(body, dict) else None
        text = self._redact(str(message if message is not None else response.text[:200]))
        if status == 200:
            if body is None:
                raise ApiError(f"GET {url}: the response is not JSON")
            return body
        if status == 422:
            raise InvalidApiKeyError(f"the API refused the key (422): {text}")
        if _BUDGET_WORDS.search(text):
            raise BudgetExceededError(text)
        if status == 404:
            raise InvalidConfigError(text)
        raise ApiError(f"GET {url}: status {status}: {text}")

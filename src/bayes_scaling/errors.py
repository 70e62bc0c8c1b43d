"""The exception tree of bayes_scaling.

Every error the package raises on purpose derives from :class:`BayesScalingError`, so a caller
can catch one class. Errors are raised at the edges (command line, HTTP, files), never inside
jitted code.

BayesScalingError
├── InvalidConfigError        a configuration the API would reject (range, divisibility)
├── InvalidTruthError         a simulator truth with unknown or mistyped keys
├── DataFormatError           a runs file that cannot be read (names file, row and column)
├── LedgerError               the local ledger disagrees with itself or with the API
├── DatabaseFileError         a SQLite file (ledger, server store) that cannot be opened or written
├── LockedError               a run directory or ledger held by another live process
└── ApiError                  anything that went wrong talking to the training API
    ├── InvalidApiKeyError    the API refused the key (HTTP 422)
    ├── BudgetExceededError   the query would take the key past its budget; nothing was charged
    ├── FailedQueryError      the API charged a query but its answer is not a usable loss
    ├── ApiUnreachableError   connection failures or 5xx after all retries
    ├── ApiAuthError          the 2026 API answered 401 (missing or unknown X-API-Key)
    ├── ApiValidationError    the 2026 API answered 422 (its ``detail`` list in ``.errors``)
    ├── ExperimentNotFoundError  the 2026 API answered 404 (no such experiment for this key)
    └── DuplicateExperimentError the 2026 API answered 409 (the configuration was submitted before)
"""

__all__ = [
    "ApiAuthError",
    "ApiError",
    "ApiValidationError",
    "DuplicateExperimentError",
    "ExperimentNotFoundError",
    "ApiUnreachableError",
    "BayesScalingError",
    "BudgetExceededError",
    "DataFormatError",
    "DatabaseFileError",
    "FailedQueryError",
    "InvalidApiKeyError",
    "InvalidConfigError",
    "InvalidTruthError",
    "LedgerError",
    "LockedError",
]


class BayesScalingError(Exception):
    """Base class of every error raised by bayes_scaling."""


class InvalidConfigError(BayesScalingError, ValueError):
    """A training configuration outside the API's space; the message is the API's own."""


class InvalidTruthError(BayesScalingError, ValueError):
    """A simulator truth that names an unknown key or gives a value of the wrong type."""


class DataFormatError(BayesScalingError, ValueError):
    """A runs file that cannot be parsed; the message names the file, the row and the column."""


class LedgerError(BayesScalingError):
    """The local ledger of paid queries is inconsistent with itself or with the API."""


class DatabaseFileError(BayesScalingError):
    """A SQLite file (the ledger, the server's store) that cannot be opened, read or written."""


class LockedError(BayesScalingError):
    """A run directory or ledger held by another live process; the message names its PID."""


class ApiError(BayesScalingError):
    """A failure talking to the training API."""


class InvalidApiKeyError(ApiError):
    """The API answered 422: the key is not valid."""


class BudgetExceededError(ApiError):
    """The query would take the key past its FLOP budget. Nothing was charged."""


class FailedQueryError(ApiError):
    """The API charged a query but answered no usable loss (non-finite or impossible).

    The query is recorded in the ledger as failed (its FLOPs count as spent, it is never
    fitted), and asking for the same configuration again raises this error without paying.
    """


class ApiUnreachableError(ApiError):
    """The API could not be reached (connection errors or 5xx) after all retries."""


class ApiAuthError(ApiError):
    """The 2026 API answered 401: ``missing X-API-Key`` or ``invalid API key``."""


class ApiValidationError(ApiError, ValueError):
    """The 2026 API (or the client's own check before sending) refused a body with 422.

    ``errors`` holds FastAPI's ``detail`` list (``type``, ``loc``, ``msg``, ...).
    """

    def __init__(self, message: str, errors: list | None = None) -> None:
        super().__init__(message)
        self.errors = list(errors or [])


class ExperimentNotFoundError(ApiError):
    """The 2026 API answered 404: the experiment does not exist or belongs to another key."""


class DuplicateExperimentError(ApiError):
    """The 2026 API answered 409: this key already has an experiment with the same config."""

"""Reading and writing runs files: the input of ``bayes-scaling fit`` and the ``runs.csv`` output.

Three kinds of file are understood, as CSV or JSON (a list of objects, or an object holding one
list under ``previous_runs`` or ``runs``):

- **API rows**: ``d_model, num_layers, num_heads, batch_size, learning_rate, train_flops, loss``
  (the training API's names; extra columns such as ``source_repo`` are ignored), e.g. the public
  ``cs336_api_runs.csv`` or a ``GET /previous_runs`` dump. Parameter counts come from the
  reference model (non-embedding) and tokens from ``flops / (6 N)``.
- **generic rows**: ``n_params``, then ``n_tokens`` or ``flops`` (tokens = flops / (6 n_params)),
  and ``loss``. The parameter count is whatever convention the file uses. A few common spellings
  are accepted: ``parameters``/``Model Size`` for ``n_params``, ``compute_budget``/``Training FLOP``
  for ``flops``, ``tokens`` for ``n_tokens``, ``final_loss`` for ``loss``.

Malformed files raise :class:`~bayes_scaling.errors.DataFormatError` with a one-line message that
names the file, the row and the column. Rows are numbered as the user sees them: in a CSV the
header is row 1, so the first run is row 2 (the spreadsheet row and the file line); in JSON the
first object of the list is row 1.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bayes_scaling.errors import DataFormatError
from bayes_scaling.files import atomic_write
from bayes_scaling.oracle import Observation
from bayes_scaling.params import non_embedding_params
from bayes_scaling.space import RunConfig

__all__ = [
    "API_COLUMNS",
    "MIN_DISTINCT_RUNS",
    "RunsData",
    "check_identifiable",
    "read_runs",
    "runs_from_observations",
    "write_runs_csv",
]

logger = logging.getLogger(__name__)

API_COLUMNS = (
    "d_model",
    "num_layers",
    "num_heads",
    "batch_size",
    "learning_rate",
    "train_flops",
    "loss",
)
_INT_COLUMNS = ("d_model", "num_layers", "num_heads", "batch_size", "train_flops")
_ALIASES = {
    "n_params": ("n_params", "parameters", "Model Size"),
    "n_tokens": ("n_tokens", "tokens"),
    "flops": ("flops", "compute_budget", "Training FLOP"),
    "loss": ("loss", "final_loss"),
}
_SOURCE_COLUMNS = ("source_repo", "source")
#: Fewest runs at distinct (N, D) that identify the law's five constants (E, A, alpha, B, beta).
MIN_DISTINCT_RUNS = 5
# Largest parameter count of an API row: the counts are exact integers in float64 below 2**53.
_MAX_COUNT = 2**53


@dataclass(frozen=True, kw_only=True)
class RunsData:
    """The runs of one file, ready for fitting.

    Attributes
    ----------
    path : str
        The file read.
    kind : str
        ``"api"`` (configurations of the training API) or ``"generic"`` (n_params, n_tokens).
    description : str
        One human sentence: what was read and which columns/conventions were used.
    observations : tuple of Observation
        The API rows as observations (empty for generic rows).
    n_params, n_tokens, flops, loss : numpy.ndarray
        Float64 arrays of shape ``(M,)``. For API rows ``n_params`` is the non-embedding count of
        the reference model and ``n_tokens = flops / (6 n_params)``.
    warnings : tuple of str
        Things the user should know (pooled sources, dropped duplicates).
    row_numbers : tuple of int
        The file row of each run (as in the error messages), when read from a file.
    columns : dict of str to numpy.ndarray
        The extra numeric columns asked for with ``read_runs(extra_columns=...)``, per run
        (NaN where blank).
    run_features : RunFeatures or None
        Features the caller computed (the 2026 loop's, counted on each run's 2026 architecture);
        None: :meth:`features` derives them from the configurations (2025 counts).
    """

    path: str
    kind: str
    description: str
    observations: tuple[Observation, ...] = ()
    n_params: np.ndarray = field(repr=False)
    n_tokens: np.ndarray = field(repr=False)
    flops: np.ndarray = field(repr=False)
    loss: np.ndarray = field(repr=False)
    warnings: tuple[str, ...] = ()
    row_numbers: tuple[int, ...] = ()
    columns: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)
    run_features: Any = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.loss.shape[0])

    @property
    def configs(self) -> list[RunConfig]:
        """The API configurations (empty for generic rows)."""
        return [obs.config for obs in self.observations]

    def features(self):
        """Return the runs as :class:`bayes_scaling.features.RunFeatures` for the model."""
        from bayes_scaling import features as features_module

        if self.run_features is not None:
            return self.run_features
        if self.kind == "api":
            return features_module.features_from_configs(self.configs)
        return features_module.features_from_generic(self.n_params, self.n_tokens)


def read_runs(
    path: str | os.PathLike,
    *,
    source: str | None = None,
    predict: bool = False,
    extra_columns: Sequence[str] = (),
) -> RunsData:
    """Read a runs file (CSV or JSON) of API rows or generic rows.

    Parameters
    ----------
    path : path-like
        The file. ``.json`` files are parsed as JSON, anything else as CSV.
    source : str, optional
        Keep only rows whose ``source_repo`` (or ``source``) column contains this text, e.g.
        ``"brandon"`` for the 2025 edition rows of ``cs336_api_runs.csv``.
    predict : bool
        Read rows to predict (``bayes-scaling predict``) or a pool (``run --pool``, whose rows
        without a loss are planned runs): the loss column may be absent or a cell blank (then
        ``loss`` is NaN) and repeated configurations are all kept, so run ``i`` is the file's
        ``i``-th row.
    extra_columns : sequence of str
        Optional numeric columns to keep in ``RunsData.columns`` (e.g. a pool's ``cost``);
        blank cells are NaN, a column absent from the file is left out.

    Returns
    -------
    RunsData

    Raises
    ------
    DataFormatError
        One line naming the file, the row and the column of the first problem.
    """
    path = Path(path)
    name = str(path)
    if path.is_dir():
        raise DataFormatError(f"{name}: expected a runs file, got a directory")
    if not path.is_file():
        raise DataFormatError(f"{name}: no such file")
    if path.suffix.lower() == ".json":
        rows, first_row = _read_json_rows(path), 1
    else:
        rows, first_row = _read_csv_rows(path), 2
    if not rows:
        raise DataFormatError(f"{name}: row {first_row}: the file holds no runs")
    numbered = [(first_row + i, row) for i, row in enumerate(rows)]
    numbered = _filter_source(name, numbered, source)
    columns = set(rows[0])
    resolved = {key: next((a for a in names if a in columns), None) for key, names in
                _ALIASES.items()}
    if all(col in columns or (predict and col == "loss") for col in API_COLUMNS):
        runs = _api_runs(name, numbered, predict=predict)
    elif resolved["n_params"] and (resolved["loss"] or predict) and (
        resolved["n_tokens"] or resolved["flops"]
    ):
        runs = _generic_runs(name, numbered, resolved, predict=predict)
    else:
        runs = None
    if runs is not None:
        by_row = dict(numbered)
        extras = {
            col: np.array([_optional_number(name, n, col, by_row[n][col])
                           for n in runs.row_numbers], dtype=np.float64)
            for col in extra_columns if col in columns
        }
        return _with_source(dataclasses.replace(runs, columns=extras), source)
    missing_api = [col for col in API_COLUMNS if col not in columns]
    raise DataFormatError(
        f"{name}: row 1, column '{missing_api[0]}': missing; expected the API's columns "
        f"{', '.join(API_COLUMNS)} or n_params, n_tokens or flops, and loss; "
        f"got {', '.join(sorted(columns)) or 'no columns'}"
    )


def _read_csv_rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = []
            for row in reader:
                if None in row:
                    raise DataFormatError(
                        f"{path}: row {reader.line_num}, column {len(reader.fieldnames) + 1}: "
                        f"more values than the header's {len(reader.fieldnames)} columns"
                    )
                short = [col for col, value in row.items() if value is None]
                if short:
                    raise DataFormatError(
                        f"{path}: row {reader.line_num}, column '{short[0]}': missing value "
                        f"(fewer values than the header's {len(reader.fieldnames)} columns)"
                    )
                rows.append(row)
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: row 1: not a UTF-8 text file ({exc.reason})") from None
    except csv.Error as exc:
        raise DataFormatError(f"{path}: row 1: not a CSV file ({exc})") from None
    return rows


def _read_json_rows(path: Path) -> list[dict[str, Any]]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: row 1: not a UTF-8 text file ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            f"{path}: row 1: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of more than 4300 digits
        raise DataFormatError(f"{path}: row 1: not usable JSON ({exc})") from None
    if isinstance(payload, Mapping):
        key = next((k for k in ("previous_runs", "runs") if k in payload), None)
        if key is None:
            raise DataFormatError(
                f"{path}: row 1: expected a list of runs or an object with 'previous_runs' or "
                f"'runs', got an object with keys {sorted(payload)}"
            )
        payload = payload[key]
    if not isinstance(payload, list):
        raise DataFormatError(
            f"{path}: row 1: expected a list of runs, got {type(payload).__name__}"
        )
    for i, row in enumerate(payload, start=1):
        if not isinstance(row, Mapping):
            raise DataFormatError(f"{path}: row {i}: expected an object, got {row!r}")
    return [dict(row) for row in payload]


def _with_source(runs: RunsData, source: str | None) -> RunsData:
    if source is None:
        return runs
    return dataclasses.replace(
        runs, description=f"{runs.description}; only rows whose source contains {source!r}"
    )


def _filter_source(name, numbered, source):
    if source is None:
        return numbered
    columns = numbered[0][1].keys()
    column = next((c for c in _SOURCE_COLUMNS if c in columns), None)
    if column is None:
        raise DataFormatError(
            f"{name}: row 1: --source needs a column {' or '.join(_SOURCE_COLUMNS)}, found none"
        )
    kept = [(n, row) for n, row in numbered if source in str(row[column])]
    if not kept:
        raise DataFormatError(f"{name}: row 1, column '{column}': no row contains {source!r}")
    return kept


def _number(name: str, row_number: int, column: str, value: Any, *, integer: bool) -> float:
    problem = None
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        problem = "a number"
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            problem = "a number"
        except OverflowError:  # an integer too large for a float
            problem = "a positive finite number"
        else:
            if not math.isfinite(number) or number <= 0:
                problem = "a positive finite number"
            elif integer and number != int(number):
                problem = "a positive integer"
    if problem:
        shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:37]}..."
        raise DataFormatError(
            f"{name}: row {row_number}, column '{column}': expected {problem}, got {shown}"
        )
    return int(number) if integer else number


def _optional_number(name: str, row_number: int, column: str, value: Any) -> float:
    """A positive number, or NaN for a blank cell (JSON null or empty text)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan
    return _number(name, row_number, column, value, integer=False)


def _loss_of(name: str, row_number: int, column: str | None, row, predict: bool) -> float:
    """The loss of a row: NaN without a loss column, or, when predicting, for a blank cell."""
    if column is None or (predict and column not in row):
        return math.nan
    if predict:
        return _optional_number(name, row_number, column, row[column])
    return _number(name, row_number, column, _cell(name, row_number, row, column),
                   integer=False)


def _cell(name: str, row_number: int, row: Mapping[str, Any], column: str) -> Any:
    if column not in row:
        raise DataFormatError(f"{name}: row {row_number}, column '{column}': missing")
    return row[column]


def _api_runs(name: str, numbered, *, predict: bool = False) -> RunsData:
    observations: list[Observation] = []
    kept_rows: list[int] = []
    seen: dict[tuple, float] = {}
    duplicates = conflicts = 0
    for row_number, row in numbered:
        values = {
            col: _number(name, row_number, col, _cell(name, row_number, row, col),
                         integer=col in _INT_COLUMNS)
            # the loss is read apart (_loss_of); every other column is required in every row
            for col in API_COLUMNS if col != "loss"
        }
        d, layers = values["d_model"], values["num_layers"]
        if non_embedding_params(d, layers) >= _MAX_COUNT:
            raise DataFormatError(
                f"{name}: row {row_number}, column 'd_model': expected a model below "
                f"{_MAX_COUNT:.3g} parameters, got d_model={d} and num_layers={layers}"
            )
        if values["d_model"] % values["num_heads"]:
            raise DataFormatError(
                f"{name}: row {row_number}, column 'num_heads': expected a divisor of d_model="
                f"{values['d_model']}, got {values['num_heads']}"
            )
        loss = _loss_of(name, row_number, "loss", row, predict)
        config = RunConfig(**values)
        if config.key() in seen and not predict:
            if math.isclose(seen[config.key()], loss, rel_tol=1e-12):
                duplicates += 1
                continue
            conflicts += 1
        seen[config.key()] = loss
        observations.append(Observation(config=config, loss=loss))
        kept_rows.append(row_number)

    warnings = []
    if duplicates:
        warnings.append(f"dropped {duplicates} repeated configuration(s) with identical losses")
    if conflicts:
        warnings.append(
            f"{conflicts} configuration(s) appear more than once with different losses; all kept"
        )
    sources = {str(row[c]) for _, row in numbered for c in _SOURCE_COLUMNS if c in row}
    if len(sources) > 1:
        warnings.append(
            f"rows from {len(sources)} sources are pooled as one response surface "
            f"({', '.join(sorted(sources))}); use --source to fit one of them"
        )
    runs = runs_from_observations(
        observations,
        path=name,
        description=(
            f"{len(observations)} training-API runs from {name}; N = non-embedding parameters "
            f"of the reference model, tokens = train_flops / (6 N)"
        ),
        warnings=warnings,
    )
    return dataclasses.replace(runs, row_numbers=tuple(kept_rows))


def check_identifiable(runs: RunsData, minimum: int = MIN_DISTINCT_RUNS) -> RunsData:
    """Refuse runs too few to identify the law: ``minimum`` distinct (N, D), 2+ sizes, 2+ D.

    Raises
    ------
    DataFormatError
        One line naming the file and stating the minimum.
    """
    pairs = {(float(n), float(t)) for n, t in zip(runs.n_params, runs.n_tokens, strict=True)}
    sizes = {n for n, _ in pairs}
    tokens = {t for _, t in pairs}
    if len(pairs) < minimum or len(sizes) < 2 or len(tokens) < 2:
        raise DataFormatError(
            f"{runs.path}: expected at least {minimum} runs at distinct (parameters, tokens), "
            f"with 2 or more of each, to identify the law; got {len(pairs)} distinct of "
            f"{len(runs)} run(s) ({len(sizes)} size(s), {len(tokens)} token count(s))"
        )
    return runs


def runs_from_observations(
    observations: Iterable[Observation],
    *,
    path: str = "",
    description: str | None = None,
    warnings: Sequence[str] = (),
    features=None,
) -> RunsData:
    """Wrap API observations (e.g. an oracle's) as :class:`RunsData` of kind ``"api"``.

    ``features`` (optional): the observations' features in another count family (the 2026
    loop's); ``n_params`` is then theirs.
    """
    observations = tuple(observations)
    d_model = np.array([o.config.d_model for o in observations], dtype=np.int64)
    num_layers = np.array([o.config.num_layers for o in observations], dtype=np.int64)
    n_params = (np.asarray(non_embedding_params(d_model, num_layers), dtype=np.float64)
                if features is None else np.asarray(features.n_params, np.float64))
    flops = np.array([o.config.train_flops for o in observations], dtype=np.float64)
    if description is None:
        description = (
            f"{len(observations)} training-API runs; N = non-embedding parameters of the "
            f"reference model, tokens = train_flops / (6 N)"
        )
    return RunsData(
        path=path,
        kind="api",
        description=description,
        observations=observations,
        n_params=n_params,
        n_tokens=flops / (6.0 * n_params),
        flops=flops,
        loss=np.array([o.loss for o in observations], dtype=np.float64),
        warnings=tuple(warnings),
        run_features=features,
    )


def _generic_runs(
    name: str, numbered, resolved: Mapping[str, str | None], *, predict: bool = False
) -> RunsData:
    n_col, t_col, f_col, l_col = (resolved[k] for k in ("n_params", "n_tokens", "flops", "loss"))
    n_params, n_tokens, flops, loss = [], [], [], []
    for row_number, row in numbered:
        n = _number(name, row_number, n_col, _cell(name, row_number, row, n_col), integer=False)
        if t_col:
            t = _number(name, row_number, t_col, _cell(name, row_number, row, t_col),
                        integer=False)
            c = 6.0 * n * t
        else:
            c = _number(name, row_number, f_col, _cell(name, row_number, row, f_col),
                        integer=False)
            t = c / (6.0 * n)
        n_params.append(n)
        n_tokens.append(t)
        flops.append(c)
        loss.append(_loss_of(name, row_number, l_col, row, predict))
    token_rule = f"tokens from '{t_col}'" if t_col else f"tokens = '{f_col}' / (6 N)"
    return RunsData(
        path=name,
        kind="generic",
        description=(
            f"{len(loss)} generic runs from {name}: N from '{n_col}' (the file's own parameter "
            f"convention), {token_rule}, "
            + (f"loss from '{l_col}'" if l_col else "no loss column")
        ),
        n_params=np.array(n_params),
        n_tokens=np.array(n_tokens),
        flops=np.array(flops),
        loss=np.array(loss),
        row_numbers=tuple(n for n, _ in numbered),
    )


def _rows_of(runs: RunsData | Iterable[Observation] | Sequence[Mapping[str, Any]]):
    counts = None
    if isinstance(runs, RunsData):
        if runs.kind == "api":
            counts = None if runs.run_features is None else runs.n_params
            runs = runs.observations
        else:
            return ["n_params", "n_tokens", "flops", "loss"], [
                {"n_params": n, "n_tokens": t, "flops": c, "loss": y}
                for n, t, c, y in zip(runs.n_params, runs.n_tokens, runs.flops, runs.loss,
                                      strict=True)
            ]
    rows = []
    for item in runs:
        if isinstance(item, Observation):
            rows.append({**item.config.to_query(), "loss": item.loss})
        else:
            rows.append(dict(item))
    if rows and all(col in rows[0] for col in API_COLUMNS):
        for i, row in enumerate(rows):
            n = (int(non_embedding_params(int(row["d_model"]), int(row["num_layers"])))
                 if counts is None else int(counts[i]))
            row["non_embedding_params"] = n
            row["tokens"] = float(row["train_flops"]) / (6.0 * n)
        header = [*API_COLUMNS, "non_embedding_params", "tokens"]
    else:
        header = list(rows[0]) if rows else list(API_COLUMNS)
    return header, rows


def write_runs_csv(
    path: str | os.PathLike, runs: RunsData | Iterable[Observation] | Sequence[Mapping[str, Any]]
) -> Path:
    """Write runs as CSV, atomically and mode 0644 (:func:`bayes_scaling.files.atomic_write`).

    API observations are written in the API's columns plus ``non_embedding_params`` and
    ``tokens`` (``train_flops / (6 N)``), so :func:`read_runs` reads the file back.

    Parameters
    ----------
    path : path-like
        Destination file.
    runs : RunsData, iterable of Observation, or sequence of mappings
        What to write; mappings are written with the first row's keys as the header.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    header, rows = _rows_of(runs)

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _format(v) for k, v in row.items()})

    return atomic_write(path, write)


def _format(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        return repr(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value

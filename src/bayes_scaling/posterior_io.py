"""Rebuild the posterior that ``fit`` or ``run`` saved in its output folder.

A run folder (:func:`bayes_scaling.report.write_outputs`) holds ``posterior.nc`` (ArviZ
InferenceData), ``runs.csv`` (the fitted runs) and ``report.json``. The posterior is rebuilt from:

- the draws: every variable of the ``posterior`` group, chains flattened. The extrapolation
  discrepancy's prior draws ``tau_x`` and ``z_x`` are read from the ``posterior`` group or, if
  they are not there, from whichever other group holds them (newer files keep prior-only draws
  out of the posterior group); without them the prediction has no discrepancy term, and a
  warning says so;
- whether the API nuisance terms were fitted: every nuisance site has draws;
- the data's edge (:class:`~bayes_scaling.model.DataRange`), from which extrapolation distances
  are measured: from ``runs.csv``, exactly as the fit computed it from the same runs;
- the diagnostics: from ``report.json``;
- the priors: :class:`~bayes_scaling.model.PriorConfig` defaults (``fit`` and ``run`` use no
  other), or the ``prior`` mapping of ``report.json`` where one was saved.

So predictions of the rebuilt posterior carry the same discrepancy term as the report's.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from bayes_scaling.diagnostics import Diagnostics
from bayes_scaling.errors import DataFormatError
from bayes_scaling.model import CORE_SITES, NUISANCE_SITES, DataRange, PriorConfig
from bayes_scaling.posterior import Posterior
from bayes_scaling.runs_io import read_runs

__all__ = ["DISCREPANCY_DRAWS", "load_posterior"]

logger = logging.getLogger(__name__)

#: The discrepancy's prior draws, one per posterior draw.
DISCREPANCY_DRAWS = ("tau_x", "z_x")


def _flat(dataset) -> dict[str, np.ndarray]:
    """Variables of one group with chains flattened, each ``(S,)`` (scalar sites only)."""
    out = {}
    for name, array in dataset.data_vars.items():
        values = np.asarray(array.values, dtype=np.float64)
        if values.ndim == 2:
            out[str(name)] = values.reshape(-1)
    return out


def _read_idata(path: Path):
    import arviz as az

    try:
        return az.from_netcdf(path)
    except (OSError, ValueError, KeyError) as exc:
        raise DataFormatError(f"{path}: not a readable posterior file ({exc})") from None


def load_posterior(run_dir: str | os.PathLike) -> Posterior:
    """Rebuild the :class:`~bayes_scaling.inference.Posterior` saved in ``run_dir``.

    Raises
    ------
    DataFormatError
        One line naming the missing or unreadable file, or the draw that is missing.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataFormatError(f"{run_dir}: expected a run folder written by fit or run, got "
                              "no such folder")
    paths = {name: run_dir / name for name in ("posterior.nc", "runs.csv", "report.json")}
    for name, path in paths.items():
        if not path.is_file():
            raise DataFormatError(f"{run_dir}: expected {name} (written by fit or run), "
                                  f"found none")
    try:
        api = json.loads(paths["report.json"].read_text()).get("api")
    except (json.JSONDecodeError, AttributeError):
        api = None  # reported below
    if api == "2026":
        raise DataFormatError(f"{run_dir}: expected a run of the 2025 API or a fit, got a run of "
                              "the 2026 API (its law counts N on the 2026 model; not supported)")
    idata = _read_idata(paths["posterior.nc"])
    if "posterior" not in idata.groups():
        raise DataFormatError(f"{paths['posterior.nc']}: expected a posterior group, got "
                              f"{', '.join(idata.groups()) or 'no groups'}")
    draws = _flat(idata.posterior)
    if "e" not in draws or "sigma" not in draws:
        raise DataFormatError(f"{paths['posterior.nc']}: expected draws of e and sigma, got "
                              f"{', '.join(sorted(draws)) or 'none'}")
    missing = [name for name in CORE_SITES if name not in draws]
    partial = [name for name in NUISANCE_SITES if name not in draws]
    if missing or (partial and len(partial) < len(NUISANCE_SITES)):
        raise DataFormatError(f"{paths['posterior.nc']}: expected draws of "
                              f"{', '.join(missing or partial)}, got none (written by an "
                              "older version? fit again)")
    size = draws["e"].shape[0]
    for name in DISCREPANCY_DRAWS:
        if name in draws:
            continue
        for group in idata.groups():
            found = _flat(getattr(idata, group)).get(name)
            if found is not None and found.shape[0] == size:
                draws[name] = found
                break
    if not all(name in draws for name in DISCREPANCY_DRAWS):
        logger.warning("%s holds no tau_x/z_x draws: predictions carry no extrapolation "
                       "discrepancy", paths["posterior.nc"])
    try:
        report = json.loads(paths["report.json"].read_text())
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{paths['report.json']}: not valid JSON ({exc})") from None
    diag = report.get("diagnostics") or {}
    diagnostics = Diagnostics(
        r_hat_max=_number(diag.get("r_hat_max")),
        ess_bulk_min=_number(diag.get("ess_bulk_min")),
        ess_tail_min=_number(report.get("ess_tail_min")),
        divergences=int(diag.get("divergences") or 0),
        warnings=list(report.get("diagnostic_warnings") or []),
    )
    prior = PriorConfig.from_saved(report["prior"]) if isinstance(report.get("prior"), dict) else (
        PriorConfig())
    runs = read_runs(paths["runs.csv"])
    posterior = Posterior(
        idata=idata,
        diagnostics=diagnostics,
        prior=prior,
        nuisance=not partial,
        data_range=DataRange.from_features(runs.features()),
    )
    # discrepancy draws found outside the groups Posterior reads: carry them over
    elsewhere = {k: draws[k] for k in DISCREPANCY_DRAWS if k in draws and k not in posterior.draws}
    return posterior.with_draws(**elsewhere) if elsewhere else posterior


def _number(value) -> float:
    return float("nan") if value is None else float(value)

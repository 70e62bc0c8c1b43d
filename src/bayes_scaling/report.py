"""The outputs of ``fit`` and ``run``: report.json, report.md, runs.csv, posterior.nc, figures.

Split by job: this module builds the report.json mapping (:func:`build_report`) and writes every
file (:func:`write_outputs`); :mod:`bayes_scaling.report_markdown` renders report.md,
:mod:`bayes_scaling.report_figures` draws the figures, :mod:`bayes_scaling.files` writes
atomically with mode 0644, :mod:`bayes_scaling.diagnostics` owns the diagnostic thresholds and
:mod:`bayes_scaling.summary` the quantile summaries.

``report.json`` holds DESIGN.md section 5's keys exactly, plus a few extra keys (``ess_tail_min``,
``warnings``, ``runs_description``, ``shape_rule``, ``learning_rate_source``, ``figures``; in
``recommended``: ``<name>_ci50`` / ``<name>_ci90`` for every choice of the posterior, e.g.
``learning_rate_ci90``; ``outside_explored``, the recommended values outside the fitted
runs' range with the factor by which they are outside; ``gap_to_optimum``, why the predicted
loss lies above ``loss_opt``, in nats; both from :mod:`bayes_scaling.recommend_caveats`).
Generic rows' ``recommended`` has no architecture, batch size, learning rate or
``gap_to_optimum`` keys. Summaries are the posterior median and equal-tailed 50% and 90%
intervals.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from bayes_scaling.files import atomic_write, atomic_write_text
from bayes_scaling.oracle import Observation
from bayes_scaling.params import CONTEXT_LENGTH, VOCAB_SIZE
from bayes_scaling.progress import NO_PROGRESS, Progress
from bayes_scaling.recommend import Recommendation
from bayes_scaling.recommend_caveats import outside_explored
from bayes_scaling.report_markdown import render_markdown
from bayes_scaling.runs_io import RunsData, runs_from_observations, write_runs_csv
from bayes_scaling.summary import summarize

if TYPE_CHECKING:
    from bayes_scaling.posterior import PosteriorQueries

__all__ = ["build_report", "write_outputs"]

logger = logging.getLogger(__name__)

_LAW_NAMES = ("E", "A", "B", "alpha", "beta")
#: Nuisance parameters that move the recommendation: (draw name, report key, transform).
_NUISANCE = (
    ("a_lr", "a_lr", None),
    ("b_lr", "b_lr", None),
    ("c_bs", "c_bs", None),
    ("l0", "lr_star_1e7", np.exp),
    ("lam", "lam", None),
    ("omega", "omega", None),
)


def build_report(
    *,
    runs: RunsData,
    posterior: PosteriorQueries,
    recommendation: Recommendation,
    target_flops: float,
    budget_flops: float,
    flops_used: float,
    strategy: str,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the report.json mapping (DESIGN.md section 5 keys, then extras)."""
    optimum = posterior.optimum(target_flops)
    law = posterior.law_params()
    diagnostics = posterior.diagnostics
    rec = recommendation
    sampler_warnings = list(diagnostics.warnings)
    warnings = sampler_warnings + list(runs.warnings)
    top = float(np.max(runs.flops)) if len(runs) else float("nan")
    if math.isfinite(top) and target_flops > 10 * top:
        warnings.append(
            f"the target {target_flops:.1e} FLOPs is {target_flops / top:.0f}x the largest run "
            f"({top:.1e}): everything at the target is an extrapolation of the law"
        )
    report: dict[str, Any] = {
        "target_flops": float(target_flops),
        "budget_flops": float(budget_flops),
        "flops_used": float(flops_used),
        "n_runs": len(runs),
        "strategy": strategy,
        "param_count": posterior.param_count,
        "n_opt": summarize(optimum.n_params),
        "d_opt": summarize(optimum.n_tokens),
        "loss_opt": summarize(optimum.loss),
        "recommended": _recommended(rec, runs),
        "posterior": {
            name: {k: v for k, v in summarize(getattr(law, name)).items() if k != "ci50"}
            for name in _LAW_NAMES
        },
        "diagnostics": {
            "r_hat_max": float(diagnostics.r_hat_max),
            "ess_bulk_min": float(diagnostics.ess_bulk_min),
            "divergences": int(diagnostics.divergences),
        },
        "ess_tail_min": float(diagnostics.ess_tail_min),
        "warnings": warnings,
        "diagnostic_warnings": sampler_warnings,
        "runs_description": runs.description,
        "shape_rule": rec.shape_rule,
        "learning_rate_source": rec.learning_rate_source,
        "token_convention": "tokens = flops / (6 * non_embedding_params)",
        "law_units": _law_units(posterior),
        "nuisance": _nuisance_summary(posterior),
    }
    report.update(dict(extra or {}))
    return report


def _recommended(rec: Recommendation, runs: RunsData) -> dict[str, Any]:
    """report.json's ``recommended``: the configuration, its intervals and its range flags.

    Generic recommendations carry N, D (``tokens``) and the predicted loss only. Each per-draw
    choice of the posterior (``Recommendation.intervals``) adds ``<name>_ci50`` and
    ``<name>_ci90``; ``predicted_loss_law_only`` summarises ``Recommendation.law_loss`` (the
    parameter uncertainty alone) where the recommender gives it; ``outside_explored`` lists the
    values outside the fitted runs' range;
    ``gap_to_optimum`` is ``Recommendation.gap_to_optimum`` (absent where it is empty).
    """
    out: dict[str, Any] = {}
    if not rec.generic:
        out.update(d_model=rec.d_model, num_layers=rec.num_layers, num_heads=rec.num_heads,
                   batch_size=rec.batch_size, learning_rate=rec.learning_rate)
    out.update(non_embedding_params=rec.non_embedding_params, tokens=rec.tokens,
               predicted_loss=summarize(rec.predicted_loss))
    if rec.law_loss is not None:
        out["predicted_loss_law_only"] = summarize(rec.law_loss)
    if not rec.generic:
        out["total_params"] = rec.total_params
    for name, draws in rec.intervals.items():
        summary = summarize(draws)
        out[f"{name}_ci50"], out[f"{name}_ci90"] = summary["ci50"], summary["ci90"]
    explored = runs.features() if len(runs) else None
    out["outside_explored"] = [] if explored is None else outside_explored(rec, explored)
    if rec.gap_to_optimum:
        out["gap_to_optimum"] = dict(rec.gap_to_optimum)
    return out


def _law_units(posterior: PosteriorQueries) -> str:
    if posterior.nuisance:
        return ("internal: N_eff = N_blocks + lam N_emb, D = C / (6 (N_blocks + omega N_emb)) "
                f"(N_emb = 2 * {VOCAB_SIZE} d + {CONTEXT_LENGTH} d)")
    return "source: the n_params and n_tokens of the fitted rows"


def _nuisance_summary(posterior: PosteriorQueries) -> dict[str, Any]:
    draws = posterior.draws
    out = {}
    for name, key, transform in _NUISANCE:
        if name in draws:
            values = np.asarray(draws[name], np.float64)
            values = transform(values) if transform is not None else values
            out[key] = {k: v for k, v in summarize(values).items() if k != "ci50"}
    return out


def _finite(value):
    """JSON-safe copy: NaN and infinities become null (strict JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_outputs(
    out_dir: str | os.PathLike,
    *,
    runs: RunsData | Iterable[Observation],
    posterior: PosteriorQueries,
    rng_key: jax.Array | None = None,
    figures: bool = True,
    progress: Progress | None = None,
    **report_args: Any,
) -> dict[str, Any]:
    """Write report.json, report.md, runs.csv, posterior.nc and the figures into ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        Created if missing; existing files of the same names are replaced atomically.
    runs : RunsData or iterable of Observation
        The fitted runs (``run`` passes the oracle's observations).
    posterior : PosteriorQueries
    rng_key : jax.Array, optional
        Key for the predictive draws of the figures, from the caller's seed; required when
        ``figures`` (there is no fixed default key).
    figures : bool
        Set False to skip the figures (fast tests).
    progress : Progress, optional
        Shows a bar over the figures (:mod:`bayes_scaling.progress`; default none).
    **report_args
        The rest of :func:`build_report`'s keywords: ``recommendation``, ``target_flops``,
        ``budget_flops``, ``flops_used``, ``strategy`` and optionally ``extra``.

    Returns
    -------
    dict
        The report.json mapping, with ``"files"`` naming what was written.
    """
    if figures and rng_key is None:
        raise ValueError("rng_key: expected a jax key when figures=True, got None")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not isinstance(runs, RunsData):
        runs = runs_from_observations(runs)
    report = build_report(runs=runs, posterior=posterior, **report_args)
    recommendation, target_flops = report_args["recommendation"], report_args["target_flops"]
    write_runs_csv(out / "runs.csv", runs)
    atomic_write(out / "posterior.nc", lambda tmp: posterior.idata.to_netcdf(str(tmp)))
    files = ["report.json", "report.md", "runs.csv", "posterior.nc"]
    written = {}
    if figures:
        from bayes_scaling.report_figures import write_figures

        written = write_figures(out, rng_key, runs, posterior, recommendation, target_flops,
                                report, progress=NO_PROGRESS if progress is None else progress)
        files += list(written.values())
    report["figures"] = written
    atomic_write_text(out / "report.md", render_markdown(report, written))
    atomic_write_text(out / "report.json", json.dumps(_finite(report), indent=2) + "\n")
    logger.info("wrote %s", ", ".join(files))
    return {**report, "files": files}

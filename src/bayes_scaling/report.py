"""The outputs of ``fit`` and ``run``: report.json, report.md, runs.csv, posterior.nc, figures.

``report.json`` holds DESIGN.md section 5's keys exactly, plus a few extra keys (``ess_tail_min``,
``warnings``, ``runs_description``, ``shape_rule``, ``learning_rate_source``, ``figures``).
Summaries are the posterior median and equal-tailed 50% and 90% intervals. Every file is written
atomically: a temporary file in the same folder, then ``os.replace``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bayes_scaling import plots
from bayes_scaling.oracle import Observation
from bayes_scaling.recommend import Recommendation
from bayes_scaling.runs_io import RunsData, runs_from_observations, write_runs_csv

__all__ = [
    "R_HAT_LIMIT",
    "ESS_LIMIT",
    "atomic_write_text",
    "build_report",
    "diagnostic_warnings",
    "render_markdown",
    "save_figure",
    "summarize",
    "write_outputs",
]

logger = logging.getLogger(__name__)

R_HAT_LIMIT = 1.01
ESS_LIMIT = 400
_LAW_NAMES = ("E", "A", "B", "alpha", "beta")
FIGURES = {
    "isoflops": "isoflops_predictive.png",
    "n_opt": "n_opt.png",
    "d_opt": "d_opt.png",
    "loss": "loss_at_target.png",
    "pairs": "posterior_pairs.png",
}


def summarize(draws) -> dict[str, Any]:
    """Median and equal-tailed 50% / 90% intervals of a vector of draws.

    Returns
    -------
    dict
        ``{"median": m, "ci50": [q25, q75], "ci90": [q05, q95]}`` as Python floats.
    """
    values = np.asarray(draws, dtype=np.float64).ravel()
    q05, q25, q50, q75, q95 = np.quantile(values, [0.05, 0.25, 0.5, 0.75, 0.95])
    return {"median": float(q50), "ci50": [float(q25), float(q75)], "ci90": [float(q05),
                                                                             float(q95)]}


def _diag(diagnostics, name, default=None):
    if isinstance(diagnostics, Mapping):
        return diagnostics.get(name, default)
    return getattr(diagnostics, name, default)


def diagnostic_warnings(diagnostics) -> list[str]:
    """Plain-language warnings (with what to do) for MCMC diagnostics past their limits."""
    out = []
    r_hat = _diag(diagnostics, "r_hat_max")
    ess = _diag(diagnostics, "ess_bulk_min")
    divergences = _diag(diagnostics, "divergences", 0) or 0
    if r_hat is not None and not (float(r_hat) <= R_HAT_LIMIT):
        out.append(
            f"r_hat_max = {float(r_hat):.3f} > {R_HAT_LIMIT}: the chains disagree; rerun with more "
            f"--num-warmup and --num-samples (and at least 2 --num-chains) before trusting it"
        )
    if ess is not None and not (float(ess) >= ESS_LIMIT):
        out.append(
            f"ess_bulk_min = {float(ess):.0f} < {ESS_LIMIT}: few effective draws, so the "
            f"intervals are rough; rerun with more --num-samples"
        )
    if int(divergences) > 0:
        out.append(
            f"{int(divergences)} divergent transitions: the sampler may have missed part of the "
            f"posterior; rerun with more --num-warmup (a higher target acceptance helps)"
        )
    return out


def build_report(
    *,
    runs: RunsData,
    posterior,
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
    own = _diag(diagnostics, "warnings")
    sampler_warnings = list(own) if own is not None else diagnostic_warnings(diagnostics)
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
        "param_count": getattr(posterior, "param_count", "non_embedding"),
        "n_opt": summarize(optimum.n_params),
        "d_opt": summarize(optimum.n_tokens),
        "loss_opt": summarize(optimum.loss),
        "recommended": {
            "d_model": rec.d_model,
            "num_layers": rec.num_layers,
            "num_heads": rec.num_heads,
            "batch_size": rec.batch_size,
            "learning_rate": rec.learning_rate,
            "non_embedding_params": rec.non_embedding_params,
            "total_params": rec.total_params,
            "tokens": rec.tokens,
            "predicted_loss": summarize(rec.predicted_loss),
        },
        "posterior": {
            name: {k: v for k, v in summarize(getattr(law, name)).items() if k != "ci50"}
            for name in _LAW_NAMES
        },
        "diagnostics": {
            "r_hat_max": _float(_diag(diagnostics, "r_hat_max")),
            "ess_bulk_min": _float(_diag(diagnostics, "ess_bulk_min")),
            "divergences": int(_diag(diagnostics, "divergences", 0) or 0),
        },
        "ess_tail_min": _float(_diag(diagnostics, "ess_tail_min")),
        "warnings": warnings,
        "diagnostic_warnings": sampler_warnings,
        "runs_description": runs.description,
        "shape_rule": rec.shape_rule,
        "learning_rate_source": rec.learning_rate_source,
        "token_convention": "tokens = flops / (6 * non_embedding_params)",
    }
    report.update(dict(extra or {}))
    return report


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


def _float(value):
    return None if value is None else float(value)


def _g(x: float) -> str:
    return f"{x:.4g}"


def _interval(summary: Mapping[str, Any], fmt: Callable[[float], str] = _g) -> str:
    lo50, hi50 = summary["ci50"]
    lo90, hi90 = summary["ci90"]
    return (f"{fmt(summary['median'])} (50%: {fmt(lo50)}–{fmt(hi50)}; "
            f"90%: {fmt(lo90)}–{fmt(hi90)})")


def render_markdown(report: Mapping[str, Any], figures: Mapping[str, str]) -> str:
    """report.md: the answer first, then the optimum, the posterior, diagnostics and warnings."""
    rec = report["recommended"]
    loss = rec["predicted_loss"]
    lines = [
        f"# Scaling-law report: target {report['target_flops']:.3g} FLOPs",
        "",
        "## Recommendation",
        "",
        f"Train **d_model = {rec['d_model']}, num_layers = {rec['num_layers']}, num_heads = "
        f"{rec['num_heads']}**, batch size {rec['batch_size']}, learning rate "
        f"{rec['learning_rate']:.3g} ({report.get('learning_rate_source', 'posterior')}), "
        f"on {rec['tokens']:.3g} tokens.",
        "",
        f"Predicted final loss: **{loss['median']:.3f}** (50% interval {loss['ci50'][0]:.3f}–"
        f"{loss['ci50'][1]:.3f}, 90% interval {loss['ci90'][0]:.3f}–{loss['ci90'][1]:.3f}).",
        "",
        f"Parameters: {rec['non_embedding_params']:,} non-embedding "
        f"({rec['total_params']:,} total with the token and position embeddings). Tokens = "
        f"target / (6 × non-embedding parameters).",
        "",
        "## Compute-optimal allocation at the target",
        "",
        f"Parameter count: {report['param_count']}. Median (50% and 90% equal-tailed intervals).",
        "",
        "| quantity | posterior |",
        "|---|---|",
        f"| N_opt (parameters) | {_interval(report['n_opt'])} |",
        f"| D_opt (tokens) | {_interval(report['d_opt'])} |",
        f"| loss at the optimum (law mean) | {_interval(report['loss_opt'])} |",
        "",
        "## Law parameters",
        "",
        "L(N, D) = E + A / N^alpha + B / D^beta (plus the model's nuisance terms).",
        "",
        "| parameter | median | 90% interval |",
        "|---|---|---|",
    ]
    for name, summary in report["posterior"].items():
        lo, hi = summary["ci90"]
        lines.append(f"| {name} | {_g(summary['median'])} | {_g(lo)} – {_g(hi)} |")
    diag = report["diagnostics"]
    lines += [
        "",
        "## Data and diagnostics",
        "",
        f"- runs: {report['n_runs']} ({report.get('runs_description', '')})",
        f"- strategy: {report['strategy']}; FLOPs used {report['flops_used']:.3g} of a budget "
        f"of {report['budget_flops']:.3g}",
        f"- r_hat_max = {_opt(diag['r_hat_max'], '.3f')} (want ≤ {R_HAT_LIMIT}), "
        f"ess_bulk_min = {_opt(diag['ess_bulk_min'], '.0f')} (want ≥ {ESS_LIMIT}), "
        f"ess_tail_min = {_opt(report.get('ess_tail_min'), '.0f')}, "
        f"divergences = {diag['divergences']}",
        "",
    ]
    warnings = report.get("warnings") or []
    if warnings:
        lines += ["## Warnings", ""] + [f"- {w}" for w in warnings] + [""]
    if figures:
        lines += ["## Figures", ""]
        captions = {
            "isoflops": "IsoFLOP curves with the posterior predictive",
            "n_opt": "N_opt(C), extrapolated",
            "d_opt": "D_opt(C), extrapolated",
            "loss": "loss at the target",
            "pairs": "posterior of the law parameters",
        }
        lines += [f"![{captions.get(k, k)}]({v})" for k, v in figures.items()] + [""]
    return "\n".join(lines)


def _opt(value, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text to ``path`` atomically (temporary file in the same folder, then replace)."""
    return _atomic(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _atomic(path: Path, write: Callable[[str], Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 120) -> Path:
    """Save a matplotlib Figure as PNG atomically with the Agg canvas (no pyplot, no display)."""
    FigureCanvasAgg(fig)
    return _atomic(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=dpi,
                                                      bbox_inches="tight"))


def _figures(out_dir: Path, rng_key, runs, posterior, rec, target_flops, report) -> dict[str,
                                                                                          str]:
    written = {}
    fig = Figure(figsize=(7, 5))
    plots.plot_isoflop_predictive(fig.add_subplot(), rng_key, posterior, runs)
    save_figure(fig, out_dir / FIGURES["isoflops"])
    written["isoflops"] = FIGURES["isoflops"]
    for name, quantity in (("n_opt", "n_params"), ("d_opt", "n_tokens")):
        fig = Figure(figsize=(6.5, 4.5))
        plots.plot_optimal_allocation(fig.add_subplot(), posterior, quantity=quantity,
                                      data_flops=runs.flops, target_flops=target_flops, runs=runs)
        save_figure(fig, out_dir / FIGURES[name])
        written[name] = FIGURES[name]
    fig = Figure(figsize=(6.5, 4.2))
    plots.plot_loss_at_target(fig.add_subplot(), loss_opt=posterior.optimum(target_flops).loss,
                              predicted_loss=rec.predicted_loss, target_flops=target_flops)
    save_figure(fig, out_dir / FIGURES["loss"])
    written["loss"] = FIGURES["loss"]
    fig = Figure(figsize=(8, 8))
    axes = fig.subplots(5, 5)
    plots.plot_posterior_pairs(axes, posterior)
    fig.suptitle("Posterior of the law parameters (draws)", fontsize=10)
    fig.subplots_adjust(top=0.95)
    save_figure(fig, out_dir / FIGURES["pairs"])
    written["pairs"] = FIGURES["pairs"]
    return written


def write_outputs(
    out_dir: str | os.PathLike,
    *,
    runs: RunsData | Iterable[Observation],
    posterior,
    recommendation: Recommendation,
    target_flops: float,
    budget_flops: float,
    flops_used: float,
    strategy: str,
    extra: Mapping[str, Any] | None = None,
    rng_key: jax.Array | None = None,
    figures: bool = True,
) -> dict[str, Any]:
    """Write report.json, report.md, runs.csv, posterior.nc and the figures into ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        Created if missing; existing files of the same names are replaced atomically.
    runs : RunsData or iterable of Observation
        The fitted runs (``run`` passes the oracle's observations).
    posterior : Posterior
    recommendation : Recommendation
    target_flops, budget_flops, flops_used : float
    strategy : str
        ``active``, ``isoflop-grid``, ``random`` or ``fit``.
    extra : mapping, optional
        Extra top-level keys for report.json (they may override the default extras, never the
        fixed keys' meaning).
    rng_key : jax.Array, optional
        Key for the predictive draws of the figures (default ``PRNGKey(0)``).
    figures : bool
        Set False to skip the figures (fast tests).

    Returns
    -------
    dict
        The report.json mapping, with ``"files"`` naming what was written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not isinstance(runs, RunsData):
        runs = runs_from_observations(runs)
    report = build_report(
        runs=runs, posterior=posterior, recommendation=recommendation, target_flops=target_flops,
        budget_flops=budget_flops, flops_used=flops_used, strategy=strategy, extra=extra,
    )
    write_runs_csv(out / "runs.csv", runs)
    idata = getattr(posterior, "idata", None)
    files = ["report.json", "report.md", "runs.csv"]
    if idata is not None:
        _atomic(out / "posterior.nc", lambda tmp: idata.to_netcdf(tmp))
        files.append("posterior.nc")
    written = {}
    if figures:
        key = jax.random.PRNGKey(0) if rng_key is None else rng_key
        written = _figures(out, key, runs, posterior, recommendation, target_flops, report)
        files += list(written.values())
    report["figures"] = written
    atomic_write_text(out / "report.md", render_markdown(report, written))
    atomic_write_text(out / "report.json", json.dumps(_finite(report), indent=2) + "\n")
    logger.info("wrote %s", ", ".join(files))
    return {**report, "files": files}

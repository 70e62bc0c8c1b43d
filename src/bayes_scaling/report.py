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
    "ppc": "ppc.png",
}
#: Nuisance parameters that move the recommendation: (draw name, label, transform).
_NUISANCE = (
    ("a_lr", "a_lr: lr* exponent (lr* ∝ N_blocks^-a_lr)", None),
    ("l0", "lr* at 1e7 block parameters", np.exp),
    ("lam", "lam: weight of embedding-side params in N_eff", None),
    ("omega", "omega: weight of embedding-side params in D", None),
)
_CAPTIONS = {
    "isoflops": "IsoFLOP curves: posterior predictive along a smooth shape family (API data: the "
                "posterior's preferred aspect ratio, optimal lr, batch 128); each run is drawn at "
                "its residual moved onto the curve (observed − predicted for its own config + "
                "curve at its N)",
    "ppc": "Posterior predictive check: observed loss vs predictive median and 90% interval of "
           "every fitted run, coloured by compute",
    "n_opt": "N_opt(C) (non-embedding parameters), extrapolated; crosses: lowest-loss run per "
             "compute (any lr, a crude guide)",
    "d_opt": "D_opt(C) = C / (6 N_opt), extrapolated",
    "loss": "Loss at the target: optimal loss and the recommended run's predictive",
    "pairs": "Posterior of E, A, B, alpha, beta (the model's internal units)",
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
        "law_units": _law_units(posterior, runs),
        "nuisance": _nuisance_summary(posterior),
    }
    report.update(dict(extra or {}))
    return report


def _law_units(posterior, runs) -> str:
    nuisance = getattr(posterior, "nuisance", None)
    if nuisance is None:
        nuisance = "lam" in (getattr(posterior, "draws", None) or {})
    if nuisance:
        return ("internal: N_eff = N_blocks + lam N_emb, D = C / (6 (N_blocks + omega N_emb)) "
                "(N_emb = 2 * 32000 d + 512 d)")
    return "source: the n_params and n_tokens of the fitted rows"


def _nuisance_summary(posterior) -> dict[str, Any]:
    draws = getattr(posterior, "draws", None) or {}
    out = {}
    for name, _, transform in _NUISANCE:
        if name in draws:
            values = np.asarray(draws[name], np.float64)
            values = transform(values) if transform is not None else values
            key = "lr_star_1e7" if name == "l0" else name
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
    n_opt, d_opt = report["n_opt"], report["d_opt"]
    internal = str(report.get("law_units", "")).startswith("internal")
    generic = str(report.get("law_units", "")).startswith("source")
    n_unit = "parameters (the data's convention)" if generic else "non-embedding parameters"
    lines = [
        f"# Scaling-law report: target {report['target_flops']:.3g} FLOPs",
        "",
        "## Answer",
        "",
        f"Train **d_model = {rec['d_model']}, num_layers = {rec['num_layers']}, num_heads = "
        f"{rec['num_heads']}**, batch size {rec['batch_size']}, learning rate "
        f"{rec['learning_rate']:.3g} ({report.get('learning_rate_source', 'posterior')}), "
        f"on {rec['tokens']:.3g} tokens "
        f"({rec['non_embedding_params']:,} non-embedding parameters, {rec['total_params']:,} "
        f"total). Predicted final loss **{loss['median']:.3f}** (90% interval "
        f"{loss['ci90'][0]:.3f}–{loss['ci90'][1]:.3f}).",
        "",
        f"Compute-optimal at the target: N_opt = **{n_opt['median']:.3g}** {n_unit} "
        f"(90%: {n_opt['ci90'][0]:.3g}–{n_opt['ci90'][1]:.3g}), D_opt = "
        f"**{d_opt['median']:.3g}** tokens (90%: {d_opt['ci90'][0]:.3g}–"
        f"{d_opt['ci90'][1]:.3g}).",
        "",
        f"Shape rule: {report.get('shape_rule', 'n/a')}.",
        "",
        "## Compute-optimal allocation at the target",
        "",
        "Median (50% and 90% equal-tailed intervals). " + (
            "N and D in the data's own convention (generic rows: the file's parameter and "
            "token counts); the recommended shape treats N_opt as a non-embedding count, "
            "which is only as right as that match." if generic else
            "Package convention: N = non-embedding parameters of the reference model (output "
            "head included, token and position embeddings excluded), D = C / (6 N)."),
        "",
        "| quantity | posterior |",
        "|---|---|",
        f"| N_opt (parameters) | {_interval(n_opt)} |",
        f"| D_opt (tokens) | {_interval(d_opt)} |",
        f"| loss at the optimum (model mean) | {_interval(report['loss_opt'])} |",
        "",
        "## Law parameters",
        "",
        "L(N, D) = E + A / N^alpha + B / D^beta (plus the model's nuisance terms).",
        "",
    ]
    if internal:
        lines += [
            "**Units.** These are in the model's *internal* effective sizes, not the package's "
            "N and D: N_eff = N_blocks + lam · N_emb and D = C / (6 (N_blocks + omega · "
            "N_emb)), with N_blocks the transformer blocks and final LayerNorm and N_emb = "
            "2 · 32000 · d + 512 · d (token and position embeddings and the output head). "
            "A and B are therefore not comparable with published fits as they stand; N_opt, "
            "D_opt and the recommendation above are converted to the package's convention.",
            "",
        ]
    else:
        lines += ["Units: the N and D of the fitted rows (the source's convention).", ""]
    lines += ["| parameter | median | 90% interval |", "|---|---|---|"]
    for name, summary in report["posterior"].items():
        lo, hi = summary["ci90"]
        lines.append(f"| {name} | {_g(summary['median'])} | {_g(lo)} – {_g(hi)} |")
    nuisance = report.get("nuisance") or {}
    if nuisance:
        labels = {("lr_star_1e7" if n == "l0" else n): label for n, label, _ in _NUISANCE}
        lines += ["", "Nuisance parameters that move the recommendation:", "",
                  "| parameter | median | 90% interval |", "|---|---|---|"]
        for name, summary in nuisance.items():
            lo, hi = summary["ci90"]
            lines.append(f"| {labels.get(name, name)} | {_g(summary['median'])} | "
                         f"{_g(lo)} – {_g(hi)} |")
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
    ]
    ppc = report.get("ppc")
    if ppc:
        lines.append(f"- posterior predictive check: {ppc['coverage90']:.0%} of the runs inside "
                     f"their 90% predictive interval (in-sample; want about 90%)")
    lines.append("")
    warnings = report.get("warnings") or []
    if warnings:
        lines += ["## Warnings", ""] + [f"- {w}" for w in warnings] + [""]
    if figures:
        lines += ["## Figures", ""]
        for key, path in figures.items():
            caption = _CAPTIONS.get(key, key)
            lines += [f"![{key}]({path})", "", f"*{caption}.*", ""]
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


class _CachedOptimum:
    """Wrap a posterior so that ``optimum(flops)`` is computed once per compute.

    An API posterior's optimum searches the shape grid per draw (about 0.5 s); the N_opt and
    D_opt figures, the report and the loss figure ask for the same computes.
    """

    def __init__(self, posterior):
        self._posterior = posterior
        self._cache: dict[float, Any] = {}

    def optimum(self, flops):
        key = float(flops)
        if key not in self._cache:
            self._cache[key] = self._posterior.optimum(key)
        return self._cache[key]

    def __getattr__(self, name):
        return getattr(self._posterior, name)


def _figures(out_dir: Path, rng_key, runs, posterior, rec, target_flops, report) -> dict[str,
                                                                                          str]:
    written = {}
    fig = Figure(figsize=(7, 5))
    plots.plot_isoflop_predictive(fig.add_subplot(), rng_key, posterior, runs)
    save_figure(fig, out_dir / FIGURES["isoflops"])
    written["isoflops"] = FIGURES["isoflops"]
    check = plots.predictive_check(jax.random.fold_in(rng_key, 1), posterior, runs)
    report["ppc"] = {"coverage90": check["coverage90"], "n_runs": len(runs)}
    fig = Figure(figsize=(6.5, 5))
    plots.plot_predictive_check(fig.add_subplot(), check, runs)
    save_figure(fig, out_dir / FIGURES["ppc"])
    written["ppc"] = FIGURES["ppc"]
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
    posterior = _CachedOptimum(posterior)
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

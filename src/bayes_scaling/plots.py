"""Figures of a fitted posterior. Every function draws on the Axes it is given and returns it.

Nothing here shows or saves a figure; :mod:`bayes_scaling.report` saves them (Agg backend).
Bands are equal-tailed posterior (predictive) intervals: 50% dark, 90% light.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from matplotlib import colormaps

from bayes_scaling.count_family import FAMILY_2025, CountFamily
from bayes_scaling.learning_rate_choice import median_learning_rate

__all__ = [
    "allocation_flops_grid",
    "compute_levels",
    "drawn_levels",
    "histogram_edges",
    "optimal_allocation_curve",
    "plot_isoflops_power_law",
    "plot_isoflops_profiles",
    "isoflop_curve_features",
    "plot_isoflop_predictive",
    "plot_loss_at_target",
    "plot_optimal_allocation",
    "plot_posterior_pairs",
    "plot_predictive_check",
    "predictive_check",
    "shape_for_size",
]

_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def _bands(ax, x, draws, color, label=None):
    q05, q25, q50, q75, q95 = np.quantile(np.asarray(draws), _QUANTILES, axis=0)
    ax.fill_between(x, q05, q95, color=color, alpha=0.15, linewidth=0)
    ax.fill_between(x, q25, q75, color=color, alpha=0.35, linewidth=0)
    ax.plot(x, q50, color=color, linewidth=1.5, label=label)
    return q50


def shape_for_size(n_params, aspect_ratio: float, family: CountFamily = FAMILY_2025
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Continuous ``(d_model, num_layers)`` of ``n_params`` non-embedding parameters.

    ``d_model / num_layers = aspect_ratio`` and ``family``'s non-embedding count equals
    ``n_params`` (2025: ``L (12 d^2 + 7 d) + d + 32000 d``; 2026: ``L (4 d^2 + 3 d f + 2 hd + 2 d)
    + d`` with ``f = ratio d`` unrounded, ``CountFamily.counts(continuous=True)``). The count
    grows monotonically in ``d`` along the ray, so bisection in ``ln d`` solves it;
    ``num_layers`` may be fractional (and below 1 for the smallest sizes): these are points on
    the model's smooth surface, not trainable shapes.
    """
    target = np.log(np.atleast_1d(np.asarray(n_params, np.float64)))
    lo = np.full(target.shape, np.log(1.0))
    hi = np.full(target.shape, np.log(1e6))
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        d = np.exp(mid)
        too_big = np.log(family.counts(d, d / aspect_ratio, continuous=True)[3]) > target
        hi = np.where(too_big, mid, hi)
        lo = np.where(too_big, lo, mid)
    d = np.exp(0.5 * (lo + hi))
    return d, d / aspect_ratio


def isoflop_curve_features(posterior, runs, flops: float, n_grid: np.ndarray):
    """Features along one isoFLOP curve: the model's inputs at ``flops`` for sizes ``n_grid``.

    For API runs the sizes are placed on a continuous shape family of the runs' own count family
    (2025 or 2026 counts, :func:`shape_for_size`; no integer rounding, so the curve is smooth):
    aspect ratio ``d_model / num_layers`` fixed at the posterior's ``preferred_aspect_ratio()``,
    the family's head dimension (64 for 2025), batch size 128, learning rate at the posterior
    median optimum of each shape (1e-3 if the model has no lr term). For generic runs the
    features are ``(n_params, flops / (6 n_params))``. Returns ``(features, n_params)``.
    """
    from bayes_scaling.features import RunFeatures, features_from_generic

    n_grid = np.atleast_1d(np.asarray(n_grid, np.float64))
    if runs.kind != "api":
        return features_from_generic(n_grid, flops / (6.0 * n_grid)), n_grid
    family = runs.features().family
    d, layers = shape_for_size(n_grid, posterior.preferred_aspect_ratio(), family)
    block, emb, emb_flops, _ = family.counts(d, layers, continuous=True)
    head_dim = 64.0 if family.api == "2025" else float(family.head_dim)

    def features(lr):
        return RunFeatures(d_model=d, num_layers=layers, num_heads=d / head_dim,
                           batch_size=np.full(d.shape, 128.0), learning_rate=lr,
                           flops=np.full(d.shape, float(flops)), n_params=n_grid,
                           n_tokens=float(flops) / (6.0 * n_grid), block_params=block,
                           embedding_params=emb, flops_embedding_params=emb_flops,
                           family=family)

    probe = features(np.full(d.shape, 1e-3))
    lr = median_learning_rate(posterior, probe)
    return (probe if lr is None else features(lr)), n_grid


def compute_levels(flops: np.ndarray, *, tolerance: float = 1.25) -> np.ndarray:
    """Group runs into compute levels: an index per run, shape ``(M,)``.

    Sorted computes within a factor ``tolerance`` of their neighbour share a level, so rounded
    budgets (9.99e18 and 1e19) make one isoFLOP curve. If that chains a level wider than a factor
    2 (continuous computes, e.g. digitised data), runs are binned by half decades instead.
    """
    log_c = np.log(np.asarray(flops, np.float64))
    order = np.argsort(log_c)
    breaks = np.concatenate([[0], np.diff(log_c[order]) > np.log(tolerance)])
    level = np.empty(log_c.shape, dtype=np.int64)
    level[order] = np.cumsum(breaks)
    spans = [np.ptp(log_c[level == i]) for i in np.unique(level)]
    if max(spans, default=0.0) > np.log(2.0):
        level = np.floor(log_c / np.log(10 ** 0.5)).astype(np.int64)
    return level


def drawn_levels(level: np.ndarray, max_levels: int) -> np.ndarray:
    """Compute levels to draw: all of them, or ``max_levels`` spread evenly over them.

    Levels with any number of runs are candidates (a level of one run still shows where its run
    lies); when there are more than ``max_levels``, the smallest and the largest are always kept.
    """
    ids = np.unique(level)
    if ids.size > max_levels:
        ids = ids[np.unique(np.round(np.linspace(0, ids.size - 1, max_levels)).astype(int))]
    return ids


def _mean(posterior, features) -> np.ndarray:
    return posterior.predict_mean(features).mean(axis=0)


def plot_isoflop_predictive(ax, rng_key: jax.Array, posterior, runs, *, max_levels: int = 12):
    """Loss against N per compute level: posterior predictive bands and comparable runs.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    rng_key : jax.Array
        Key for the predictive draws.
    posterior : Posterior
    runs : bayes_scaling.runs_io.RunsData
        The fitted runs; every compute level is drawn, or ``max_levels`` of them spread from the
        smallest to the largest (:func:`drawn_levels`; the title says how many were left out).

    Notes
    -----
    Each curve is drawn at the level's mean compute along the continuous shape family of
    :func:`isoflop_curve_features` (API runs: the posterior's preferred aspect ratio, its optimal
    learning rate, batch size 128). Runs of other shapes, learning rates, batch sizes or
    slightly different computes are not on that curve, so each run is drawn at its residual
    moved onto the curve: ``observed - mean(own config) + mean(curve at its N)`` (posterior
    means). A calibrated model puts about 90% of the points inside the light band.
    """
    level_of = compute_levels(runs.flops)
    levels = drawn_levels(level_of, max_levels)
    n_levels = np.unique(level_of).size
    cmap = colormaps["plasma"]
    own_mean = _mean(posterior, runs.features())
    keys = jax.random.split(rng_key, levels.size)
    for rank, (key, level) in enumerate(zip(keys, levels, strict=True)):
        color = cmap(0.85 * rank / max(levels.size - 1, 1))
        at = np.flatnonzero(level_of == level)
        flops = float(np.exp(np.log(runs.flops[at]).mean()))
        n_low, n_high = runs.n_params[at].min() / 1.5, runs.n_params[at].max() * 1.5
        widen = max(1.0, np.sqrt(10.0 / (n_high / n_low)))  # a decade at least, for few runs
        grid = np.geomspace(n_low / widen, n_high * widen, 48)
        features, n_used = isoflop_curve_features(posterior, runs, flops, grid)
        draws = posterior.sample_predictive(key, features)
        _bands(ax, n_used, draws, color, label=f"{flops:.2g} FLOPs ({at.size} run"
               f"{'' if at.size == 1 else 's'})")
        on_curve, _ = isoflop_curve_features(posterior, runs, flops, runs.n_params[at])
        moved = runs.loss[at] - own_mean[at] + _mean(posterior, on_curve)
        ax.scatter(runs.n_params[at], moved, s=14, color=color, edgecolor="black",
                   linewidth=0.4, zorder=3)
    ax.set_xscale("log")
    ax.set_xlabel("N (non-embedding parameters)" if runs.kind == "api" else "N (parameters)")
    ax.set_ylabel("final loss")
    title = "IsoFLOP curves: posterior predictive (50% / 90% bands)"
    if levels.size < n_levels:
        title += f"; {levels.size} of {n_levels} compute levels shown"
    if runs.kind == "api":
        ratio = posterior.preferred_aspect_ratio()
        title += (f"\ncurves: d_model/num_layers = {ratio:.0f}, lr = posterior optimum, bs 128;"
                  f"\npoints: observed - predicted(own config) + curve at its N")
    else:
        title += "\npoints: observed - predicted(own N, D) + curve at its N"
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7, title="compute", title_fontsize=7, loc="upper right")
    return ax


def predictive_check(rng_key: jax.Array, posterior, runs) -> dict[str, np.ndarray | float]:
    """Posterior predictive of every fitted run: median, 5% and 95% quantiles, and coverage.

    Returns
    -------
    dict
        ``median``, ``q05``, ``q95`` (each ``(M,)``) and ``coverage90``, the fraction of observed
        losses inside their 90% predictive interval (about 0.9 for a calibrated model; in-sample,
        so a little optimistic).
    """
    draws = posterior.sample_predictive(rng_key, runs.features())
    q05, q50, q95 = np.quantile(draws, [0.05, 0.5, 0.95], axis=0)
    inside = (runs.loss >= q05) & (runs.loss <= q95)
    return {"median": q50, "q05": q05, "q95": q95, "coverage90": float(inside.mean())}


def plot_predictive_check(ax, check: dict, runs):
    """Observed loss against the posterior predictive (median, 90% bars), coloured by compute.

    ``check`` is the mapping of :func:`predictive_check`. The y = x line and the coverage of the
    90% intervals are drawn on the Axes; a colour bar of log10 compute is added to its figure.
    """
    from matplotlib.colors import Normalize

    log_c = np.log10(runs.flops)
    norm = Normalize(vmin=float(log_c.min()), vmax=float(max(log_c.max(), log_c.min() + 1e-9)))
    cmap = colormaps["viridis"]
    median, q05, q95 = check["median"], check["q05"], check["q95"]
    ax.errorbar(runs.loss, median, yerr=[median - q05, q95 - median], fmt="none",
                ecolor=cmap(norm(log_c)), elinewidth=0.8, alpha=0.7, zorder=2)
    points = ax.scatter(runs.loss, median, c=log_c, cmap=cmap, norm=norm, s=14,
                        edgecolor="black", linewidth=0.3, zorder=3)
    low = float(min(runs.loss.min(), q05.min()))
    high = float(max(runs.loss.max(), q95.max()))
    ax.plot([low, high], [low, high], color="0.3", linestyle="--", linewidth=1, zorder=1)
    ax.text(0.03, 0.97, f"{check['coverage90']:.0%} of {len(runs)} runs inside their 90% "
            f"interval", transform=ax.transAxes, va="top", fontsize=8,
            bbox={"facecolor": "white", "edgecolor": "0.7"})
    ax.set_xlabel("observed final loss")
    ax.set_ylabel("posterior predictive (median, 90% interval)")
    ax.set_title("Posterior predictive check (in-sample)", fontsize=9)
    if ax.figure is not None:
        ax.figure.colorbar(points, ax=ax, label="log10 compute (FLOPs)")
    return ax


#: Tokens per parameter spanned by the size grid of :func:`optimal_allocation_curve`.
_TOKENS_PER_PARAM_RANGE = (0.01, 1e4)


def allocation_flops_grid(data_flops: Sequence[float], target_flops: float, *,
                          past_target: float = 2.0, num: int = 24) -> np.ndarray:
    """Computes at which N_opt(C) is drawn: from the smallest run to ``past_target`` x the target.

    Log-spaced, ``num`` points, the target itself included exactly (so the curve passes through
    the point the report states).
    """
    c_low = float(np.min(data_flops))
    c_high = max(float(target_flops) * past_target, float(np.max(data_flops)))
    grid = np.geomspace(min(c_low, float(target_flops)), c_high, num)
    return np.unique(np.append(grid, float(target_flops)))


def optimal_allocation_curve(posterior, runs, flops_grid: Sequence[float], *,
                             num_sizes: int = 96) -> np.ndarray:
    """Per-draw continuous ``N_opt`` at each compute of ``flops_grid``, shape ``(S, K)``.

    For API runs the optimum is searched along the continuous shape family of
    :func:`isoflop_curve_features` (aspect ratio at the posterior's preferred value, head
    dimension 64, batch 128, the posterior-median optimal learning rate): the posterior mean loss
    on ``num_sizes`` log-spaced sizes (tokens per parameter from 0.01 to 10^4), its per-draw
    minimum refined by the vertex of a parabola through the three grid points around it, so the
    curve is smooth instead of a staircase of the discrete shape grid, and one batched call
    covers every compute (no per-compute shape search). For generic runs (or ``runs=None``) it
    is the posterior's own optimum, a closed form there.
    """
    from bayes_scaling.features import RunFeatures

    flops_grid = np.asarray(flops_grid, np.float64)
    if runs is None or runs.kind != "api":
        return np.stack([np.asarray(posterior.optimum(float(c)).n_params, np.float64)
                         for c in flops_grid], axis=1)
    lo, hi = _TOKENS_PER_PARAM_RANGE
    ln_ratio = np.linspace(np.log(lo), np.log(hi), num_sizes)
    step = ln_ratio[1] - ln_ratio[0]
    ln_n = 0.5 * (np.log(flops_grid / 6.0)[:, None] - ln_ratio[None, ::-1])  # (K, G), rising
    feats = [isoflop_curve_features(posterior, runs, c, np.exp(row))[0]
             for c, row in zip(flops_grid, ln_n, strict=True)]
    features = RunFeatures.concat(feats)
    mean = np.asarray(posterior.predict_mean(features), np.float64)
    mean = mean.reshape(mean.shape[0], flops_grid.size, num_sizes)  # (S, K, G)
    i = np.clip(np.argmin(mean, axis=2), 1, num_sizes - 2)
    at = np.take_along_axis
    y0, y1, y2 = (at(mean, (i + k)[..., None], axis=2)[..., 0] for k in (-1, 0, 1))
    curvature = y0 - 2.0 * y1 + y2
    shift = np.where(curvature > 0, 0.5 * (y0 - y2) / np.where(curvature > 0, curvature, 1.0),
                     0.0)
    ln_step = step / 2.0  # ln N moves by half the ln(tokens/param) step
    ln_opt = np.take_along_axis(np.broadcast_to(ln_n, mean.shape[1:])[None], i[..., None],
                                axis=2)[..., 0] + np.clip(shift, -1.0, 1.0) * ln_step
    return np.exp(ln_opt)


def plot_optimal_allocation(
    ax,
    posterior,
    *,
    quantity: str,
    data_flops: Sequence[float],
    target_flops: float,
    runs=None,
    curve: tuple[np.ndarray, np.ndarray] | None = None,
):
    """N_opt(C) or D_opt(C) with 50/90% bands, from the data's compute range to past the target.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    posterior : Posterior
    quantity : {"n_params", "n_tokens"}
        Which side of the allocation to draw.
    data_flops : sequence of float
        Computes of the fitted runs; their range is shaded.
    target_flops : float
        Marked with a vertical line and the posterior median with its 90% interval (the
        posterior's own optimum there, the number the report states).
    runs : RunsData, optional
        If given, the lowest-loss run of each compute level is drawn as a cross (a crude
        empirical optimum; it is not what the fit uses), and for API runs the curve is the
        continuous optimum of :func:`optimal_allocation_curve`.
    curve : (flops, n_opt draws), optional
        A precomputed :func:`allocation_flops_grid` and :func:`optimal_allocation_curve` (the
        N_opt and D_opt figures share one); computed here if None.
    """
    if quantity not in ("n_params", "n_tokens"):
        raise ValueError(f"quantity: expected 'n_params' or 'n_tokens', got {quantity!r}")
    c_low, c_high = float(np.min(data_flops)), float(np.max(data_flops))
    if curve is None:
        grid = allocation_flops_grid(data_flops, target_flops)
        curve = (grid, optimal_allocation_curve(posterior, runs, grid))
    grid, n_draws = curve
    draws = n_draws if quantity == "n_params" else grid[None, :] / (6.0 * n_draws)
    _bands(ax, grid, draws, "tab:blue", label="posterior median")
    ax.axvspan(c_low, c_high, color="0.85", zorder=0, label="compute range of the runs")
    at_target = np.asarray(getattr(posterior.optimum(target_flops), quantity))
    q05, q50, q95 = np.quantile(at_target, [0.05, 0.5, 0.95])
    ax.axvline(target_flops, color="tab:red", linestyle="--", linewidth=1)
    ax.errorbar([target_flops], [q50], yerr=[[q50 - q05], [q95 - q50]], fmt="o",
                color="tab:red", capsize=3, zorder=4,
                label=f"target {target_flops:.0e}: {q50:.3g} [{q05:.3g}, {q95:.3g}]")
    if runs is not None:
        best_c, best_n = [], []
        level_of = compute_levels(runs.flops)
        for level in np.unique(level_of):
            at = np.flatnonzero(level_of == level)
            i = at[np.argmin(runs.loss[at])]
            best_c.append(runs.flops[i])
            best_n.append(runs.n_params[i] if quantity == "n_params" else runs.n_tokens[i])
        ax.scatter(best_c, best_n, marker="x", color="black", s=20, zorder=3,
                   label="lowest-loss run per compute")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(float(grid.min()) / 1.2, float(grid.max()) * 1.2)
    ax.set_xlabel("training compute C (FLOPs)")
    if quantity == "n_params":
        generic = runs is not None and runs.kind != "api"
        ax.set_ylabel("N_opt (parameters, the data's convention)" if generic
                      else "N_opt (non-embedding parameters)")
        ax.set_title("Compute-optimal model size (50% / 90% bands)", fontsize=9)
    else:
        ax.set_ylabel("D_opt (tokens)")
        ax.set_title("Compute-optimal tokens (50% / 90% bands)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    return ax


def histogram_edges(*draws, bins: int = 40, max_bins: int = 400) -> np.ndarray:
    """Common bin edges for histograms of ``draws`` that cover every finite draw.

    The bin width is set by the central 99% of the pooled draws (``bins`` bins across it); the
    edges then extend at that width to the smallest and largest draw, so no draw is clipped into
    an end bin. If that would take more than ``max_bins`` bins (very long tails), the width grows
    to fit ``max_bins``.
    """
    values = np.concatenate([np.asarray(d, np.float64).ravel() for d in draws])
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("draws: expected at least one finite value, got none")
    lo, hi = np.quantile(values, [0.005, 0.995])
    v_min, v_max = float(values.min()), float(values.max())
    if not hi > lo:
        lo, hi = v_min - 0.5, v_max + 0.5
    width = (hi - lo) / bins
    left = int(np.ceil((lo - v_min) / width))
    right = int(np.ceil((v_max - hi) / width))
    if bins + left + right > max_bins:
        return np.linspace(v_min, v_max, max_bins + 1)
    return lo + width * np.arange(-left, bins + right + 1)


def plot_loss_at_target(ax, *, loss_opt: np.ndarray, predicted_loss: np.ndarray,
                        target_flops: float):
    """Posterior of the optimal loss and predictive of the recommended run's loss at the target.

    Every draw is binned (:func:`histogram_edges`; nothing is clipped into the end bins). The
    axis shows the central 99.8% of the draws; the share of draws beyond it on either side is
    written on the plot.
    """
    both = np.concatenate([np.asarray(loss_opt, np.float64), np.asarray(predicted_loss,
                                                                        np.float64)])
    edges = histogram_edges(loss_opt, predicted_loss)
    for draws, color, label in (
        (loss_opt, "tab:blue", "optimal loss (law, no noise)"),
        (predicted_loss, "tab:orange", "recommended run (predictive)"),
    ):
        draws = np.asarray(draws)
        ax.hist(draws, bins=edges, density=True, color=color, alpha=0.45,
                label=f"{label}: median {np.median(draws):.3f}")
        ax.axvline(np.median(draws), color=color, linewidth=1.2)
    view = np.quantile(both, [0.001, 0.999])
    pad = 0.05 * (view[1] - view[0])
    ax.set_xlim(view[0] - pad, view[1] + pad)
    low, high = ax.get_xlim()
    outside = (np.mean(both < low), np.mean(both > high))
    if max(outside) > 0:
        ax.text(0.99, 0.6, f"beyond the axes: {outside[0]:.1%} left, {outside[1]:.1%} right",
                transform=ax.transAxes, ha="right", fontsize=7, color="0.3")
    ax.set_xlabel(f"loss at {target_flops:.0e} FLOPs")
    ax.set_ylabel("density")
    ax.set_title("Loss at the target", fontsize=9)
    ax.legend(fontsize=7)
    return ax


_PAIR_NAMES = ("E", "A", "B", "alpha", "beta")


def plot_posterior_pairs(axes, posterior, *, max_points: int = 2000):
    """Pair plot of the law's E, A, B, alpha, beta (A and B on a log10 scale).

    ``axes`` is a 5 x 5 array of Axes; the diagonal gets histograms, the lower triangle scatter
    plots, the upper triangle is switched off. Returns ``axes``.
    """
    law = posterior.law_params()
    columns = []
    labels = []
    for name in _PAIR_NAMES:
        values = np.asarray(getattr(law, name), np.float64).ravel()
        if name in ("A", "B"):
            values, name = np.log10(values), f"log10 {name}"
        columns.append(values)
        labels.append(name)
    step = max(1, columns[0].size // max_points)
    k = len(columns)
    for i in range(k):
        for j in range(k):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                ax.hist(columns[i], bins=30, color="tab:blue", alpha=0.7)
                ax.set_yticks([])
            else:
                ax.scatter(columns[j][::step], columns[i][::step], s=2, alpha=0.3,
                           color="tab:blue", rasterized=True)
            if i == k - 1:
                ax.set_xlabel(labels[j], fontsize=8)
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(labels[i], fontsize=8)
            elif j > 0:
                ax.set_yticklabels([])
            ax.tick_params(labelsize=6)
    return axes



def plot_isoflops_profiles(ax, result):
    """Loss against N per budget (an ``isoflops.IsoflopsResult``), with the quadratic fits."""
    data = result.data
    budgets = result.budgets()
    cmap = colormaps["plasma"]
    for rank, optimum in enumerate(result.optima):
        color = cmap(0.85 * rank / max(len(budgets) - 1, 1))
        at = data.compute_budget == optimum.compute_budget
        n, loss = data.parameters[at], data.final_loss[at]
        ax.scatter(n, loss, s=12, color=color, label=f"{optimum.compute_budget:.0e}")
        if n.size >= 3:
            x = np.log(n)
            coef = np.polyfit(x, loss, 2)
            grid = np.linspace(x.min(), x.max(), 60)
            ax.plot(np.exp(grid), np.polyval(coef, grid), color=color, linewidth=1)
        ax.scatter([optimum.n_min], [optimum.loss_min], marker="*", s=60, color=color,
                   edgecolor="black", linewidth=0.5, zorder=3)
    ax.set_xscale("log")
    ax.set_xlabel("N (parameters)")
    ax.set_ylabel("final loss")
    ax.set_title("IsoFLOP profiles: quadratic fits in ln N, star = lowest-loss run", fontsize=9)
    ax.legend(fontsize=6, title="compute (FLOPs)", title_fontsize=7, ncol=2)
    return ax


def plot_isoflops_power_law(ax, result, *, quantity: str, flops_max: float = 1e24):
    """N_opt(C) or D_opt(C) of an isoFLOPs analysis: points, the fit, the Bayesian bands.

    ``quantity`` is ``"n_params"`` or ``"n_tokens"``; the fit is extrapolated to ``flops_max``
    and the prediction budgets are marked with their least-squares value and 90% interval.
    """
    if quantity not in ("n_params", "n_tokens"):
        raise ValueError(f"quantity: expected 'n_params' or 'n_tokens', got {quantity!r}")
    budgets = result.budgets()
    n_points = result.optimal_n()
    grid = np.geomspace(budgets.min(), max(flops_max, max(result.predict_at)), 60)
    n_draws = result.bayes_n(grid)
    if quantity == "n_params":
        points, fit, draws = n_points, result.n_fit, n_draws
        label = "N_opt (parameters)"
    else:
        points, fit, draws = budgets / (6 * n_points), result.d_fit, grid / (6 * n_draws)
        label = "D_opt (tokens)"
    _bands(ax, grid, draws, "tab:blue", label="Bayesian fit: median, 50% / 90%")
    ax.plot(grid, fit(grid), color="black", linestyle="--", linewidth=1,
            label=f"least squares: {fit.a:.3g} C^{fit.b:.3f}")
    ax.scatter(budgets, points, color="tab:orange", edgecolor="black", zorder=3,
               label=f"per-budget optimum ({result.method})")
    for c in result.predict_at:
        at = draws[:, np.argmin(np.abs(np.log(grid / c)))]
        q05, q95 = np.quantile(at, [0.05, 0.95])
        value = float(fit(c))
        ax.errorbar([c], [value], yerr=[[max(value - q05, 0.0)], [max(q95 - value, 0.0)]], fmt="s",
                    color="tab:red", capsize=3, zorder=4)
        ax.annotate(f"{value:.3g}", (c, value), textcoords="offset points", xytext=(-40, 8),
                    fontsize=7, color="tab:red")
    ax.axvspan(budgets.min(), budgets.max(), color="0.88", zorder=0, label="budgets of the data")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("compute budget C (FLOPs)")
    ax.set_ylabel(label)
    ax.set_title(f"{label.split()[0]} vs compute, extrapolated to {grid.max():.0e}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    return ax

"""Figures of a fitted posterior. Every function draws on the Axes it is given and returns it.

Nothing here shows or saves a figure; :mod:`bayes_scaling.report` saves them (Agg backend).
Bands are equal-tailed posterior (predictive) intervals: 50% dark, 90% light.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from matplotlib import colormaps

from bayes_scaling.recommend import ASPECT_RATIO_BAND, candidate_shapes, padded_call

__all__ = [
    "compute_levels",
    "plot_isoflops_power_law",
    "plot_isoflops_profiles",
    "isoflop_curve_features",
    "plot_isoflop_predictive",
    "plot_loss_at_target",
    "plot_optimal_allocation",
    "plot_posterior_pairs",
]

_OFF_OPTIMUM_LR = np.log(2.0)  # |ln(lr / lr*)| above which a run counts as off-optimal lr
_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def _bands(ax, x, draws, color, label=None):
    q05, q25, q50, q75, q95 = np.quantile(np.asarray(draws), _QUANTILES, axis=0)
    ax.fill_between(x, q05, q95, color=color, alpha=0.15, linewidth=0)
    ax.fill_between(x, q25, q75, color=color, alpha=0.35, linewidth=0)
    ax.plot(x, q50, color=color, linewidth=1.5, label=label)
    return q50


def _api_features(posterior, d_model, num_layers, flops, batch_size=128):
    """Features of shapes at one compute, at the posterior's median optimal lr (1e-3 if none)."""
    from bayes_scaling.features import features_from_configs
    from bayes_scaling.space import RunConfig

    def configs(lrs):
        return [
            RunConfig(d_model=int(d), num_layers=int(L), num_heads=max(int(d) // 64, 1),
                      batch_size=batch_size, learning_rate=float(lr), train_flops=int(flops))
            for d, L, lr in zip(d_model, num_layers, lrs, strict=True)
        ]

    probe = features_from_configs(configs(np.full(len(d_model), 1e-3)))
    lr_draws = padded_call(posterior.optimal_learning_rate, probe)
    lr = np.nanmedian(lr_draws, axis=0) if np.isfinite(lr_draws).any() else None
    if lr is None or not np.all(np.isfinite(lr)):
        return probe
    return features_from_configs(configs(np.clip(lr, 1e-5, 1e-2)))


def isoflop_curve_features(posterior, runs, flops: float, n_grid: np.ndarray):
    """Features along one isoFLOP curve: the model's inputs at ``flops`` for sizes ``n_grid``.

    For API runs each size is mapped to a searched shape (head dimension 64, aspect ratio
    32..256): among shapes within 10% of the size, the one with aspect ratio nearest 90, at the
    posterior's median optimal learning rate and batch size 128; for generic runs the features are
    ``(n_params, flops / (6 n_params))``. Returns ``(features, n_params)`` with the sizes used.
    """
    if runs.kind == "api":
        d_all, l_all, n_all = candidate_shapes()
        gap = np.abs(np.log(n_all[None, :] / n_grid[:, None]))
        centre = np.sqrt(ASPECT_RATIO_BAND[0] * ASPECT_RATIO_BAND[1])
        ratio_gap = np.abs(np.log(d_all / l_all / centre))[None, :]
        # within 10% of each size, the shape nearest the band's centre: a smooth shape family
        score = np.where(gap <= np.log(1.1), ratio_gap, np.inf)
        idx = np.where(np.isfinite(score.min(axis=1)), score.argmin(axis=1), gap.argmin(axis=1))
        idx = np.unique(idx)
        idx = idx[np.argsort(n_all[idx])]
        return _api_features(posterior, d_all[idx], l_all[idx], flops), n_all[idx]
    from bayes_scaling.features import features_from_generic

    return features_from_generic(n_grid, flops / (6.0 * n_grid)), n_grid


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


def _drawn_levels(level: np.ndarray, max_levels: int) -> np.ndarray:
    ids, counts = np.unique(level, return_counts=True)
    ids = ids[counts >= 3]
    if ids.size > max_levels:
        ids = ids[np.unique(np.round(np.linspace(0, ids.size - 1, max_levels)).astype(int))]
    return ids


def plot_isoflop_predictive(ax, rng_key: jax.Array, posterior, runs, *, max_levels: int = 7):
    """Loss against N per compute level: observed runs and the posterior predictive bands.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    rng_key : jax.Array
        Key for the predictive draws.
    posterior : Posterior
    runs : bayes_scaling.runs_io.RunsData
        The fitted runs; levels with at least 3 runs are drawn (at most ``max_levels``).

    Notes
    -----
    For API runs the curves are drawn at the posterior's optimal learning rate and batch size
    128; observed runs whose learning rate is more than a factor 2 from the posterior's optimum
    for their shape are drawn hollow (their loss is expected above the curve).
    """
    level_of = compute_levels(runs.flops)
    levels = _drawn_levels(level_of, max_levels)
    if levels.size == 0:
        ax.text(0.5, 0.5, "no compute level with 3 or more runs", ha="center",
                transform=ax.transAxes)
        return ax
    cmap = colormaps["plasma"]
    off_optimum = np.zeros(len(runs), dtype=bool)
    if runs.kind == "api":
        lr_draws = padded_call(posterior.optimal_learning_rate, runs.features())
        if np.isfinite(lr_draws).any():
            lr_opt = np.nanmedian(lr_draws, axis=0)
            lr = np.array([c.learning_rate for c in runs.configs])
            off_optimum = np.abs(np.log(lr / lr_opt)) > _OFF_OPTIMUM_LR
    keys = jax.random.split(rng_key, levels.size)
    for rank, (key, level) in enumerate(zip(keys, levels, strict=True)):
        color = cmap(0.85 * rank / max(levels.size - 1, 1))
        at = level_of == level
        flops = float(np.exp(np.log(runs.flops[at]).mean()))
        n_low, n_high = runs.n_params[at].min() / 1.5, runs.n_params[at].max() * 1.5
        features, n_used = isoflop_curve_features(
            posterior, runs, flops, np.geomspace(n_low, n_high, 40)
        )
        draws = padded_call(posterior.sample_predictive, features, key)
        _bands(ax, n_used, draws, color, label=f"{flops:.2g} FLOPs")
        on, off = at & ~off_optimum, at & off_optimum
        ax.scatter(runs.n_params[on], runs.loss[on], s=14, color=color, edgecolor="black",
                   linewidth=0.4, zorder=3)
        ax.scatter(runs.n_params[off], runs.loss[off], s=14, facecolor="none", edgecolor=color,
                   linewidth=0.8, zorder=3)
    ax.set_xscale("log")
    ax.set_xlabel("N (non-embedding parameters)" if runs.kind == "api" else "N (parameters)")
    ax.set_ylabel("final loss")
    title = "IsoFLOP curves: posterior predictive (50% / 90% bands)"
    if runs.kind == "api" and off_optimum.any():
        title += "\ncurves at the optimal lr, bs 128; hollow = runs with lr off by > 2x"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, title="compute", title_fontsize=7, loc="upper right")
    return ax


def plot_optimal_allocation(
    ax,
    posterior,
    *,
    quantity: str,
    data_flops: Sequence[float],
    target_flops: float,
    flops_max: float = 1e21,
    runs=None,
):
    """N_opt(C) or D_opt(C) with 50/90% bands, from the data's compute range to ``flops_max``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    posterior : Posterior
    quantity : {"n_params", "n_tokens"}
        Which side of the allocation to draw.
    data_flops : sequence of float
        Computes of the fitted runs; their range is shaded.
    target_flops : float
        Marked with a vertical line and the posterior median with its 90% interval.
    runs : RunsData, optional
        If given, the lowest-loss run of each compute level is drawn as a cross (a crude
        empirical optimum; it is not what the fit uses).
    """
    if quantity not in ("n_params", "n_tokens"):
        raise ValueError(f"quantity: expected 'n_params' or 'n_tokens', got {quantity!r}")
    c_low, c_high = float(np.min(data_flops)), float(np.max(data_flops))
    grid = np.geomspace(c_low, max(flops_max, target_flops * 10, c_high), 48)
    draws = np.stack([np.asarray(getattr(posterior.optimum(c), quantity)) for c in grid], axis=1)
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
    ax.set_xlabel("training compute C (FLOPs)")
    if quantity == "n_params":
        ax.set_ylabel(f"N_opt ({getattr(posterior, 'param_count', 'non_embedding')} params)")
        ax.set_title("Compute-optimal model size (50% / 90% bands)", fontsize=9)
    else:
        ax.set_ylabel("D_opt (tokens)")
        ax.set_title("Compute-optimal tokens (50% / 90% bands)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    return ax


def plot_loss_at_target(ax, *, loss_opt: np.ndarray, predicted_loss: np.ndarray,
                        target_flops: float):
    """Posterior of the optimal loss and predictive of the recommended run's loss at the target."""
    both = np.concatenate([np.asarray(loss_opt), np.asarray(predicted_loss)])
    low, high = np.quantile(both, [0.005, 0.995])
    bins = np.linspace(low, high, 40)
    for draws, color, label in (
        (loss_opt, "tab:blue", "optimal loss (law, no noise)"),
        (predicted_loss, "tab:orange", "recommended run (predictive)"),
    ):
        draws = np.asarray(draws)
        ax.hist(np.clip(draws, low, high), bins=bins, density=True, color=color, alpha=0.45,
                label=f"{label}: median {np.median(draws):.3f}")
        ax.axvline(np.median(draws), color=color, linewidth=1.2)
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

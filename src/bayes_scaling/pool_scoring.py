"""Scores of a pool-mode fit on the held-out target region (the replay benchmark's metrics).

As in Li et al. 2026 (arXiv 2604.22753): R^2 of the point prediction of the target rows' raw
loss, clipped to [-1, 1]; and what that benchmark lacks: the coverage and mean width of the 90%
posterior predictive intervals of the target rows. The point prediction is the median of the
posterior predictive (:meth:`Posterior.sample_predictive`, extrapolation discrepancy included),
the interval its 5%-95% quantiles. Target losses are used here only, never by a strategy.
"""

from __future__ import annotations

import numpy as np

from bayes_scaling.summary import summarize

__all__ = ["compute_target_scores", "r2_clipped", "target_region_scores"]


def r2_clipped(observed, predicted) -> float:
    """``1 - SS_res / SS_tot`` of raw losses, clipped to [-1, 1] (NaN with < 2 rows)."""
    y = np.asarray(observed, np.float64)
    p = np.asarray(predicted, np.float64)
    if y.size < 2:
        return float("nan")
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot <= 0:
        return float("nan")
    return float(np.clip(1.0 - np.sum((y - p) ** 2) / ss_tot, -1.0, 1.0))


def target_region_scores(rng_key, posterior, features, loss) -> dict:
    """R^2, 90% coverage and width on the target rows whose ``loss`` is finite.

    Returns
    -------
    dict
        ``r2`` (clipped), ``coverage90``, ``width90`` (mean interval width, loss units),
        ``abs_error`` (mean |median - loss|), ``n_target``; NaNs when no target loss is known.
    """
    loss = np.asarray(loss, np.float64)
    known = np.isfinite(loss)
    out = {"n_target": int(known.sum())}
    if not known.any():
        return {**out, "r2": float("nan"), "coverage90": float("nan"),
                "width90": float("nan"), "abs_error": float("nan")}
    draws = posterior.sample_predictive(rng_key, features.take(np.flatnonzero(known)))
    y = loss[known]
    lo, median, hi = np.quantile(draws, [0.05, 0.5, 0.95], axis=0)
    return {
        **out,
        "r2": r2_clipped(y, median),
        "coverage90": float(np.mean((y >= lo) & (y <= hi))),
        "width90": float(np.mean(hi - lo)),
        "abs_error": float(np.mean(np.abs(median - y))),
    }


def compute_target_scores(posterior, target_flops: float) -> dict:
    """``N_opt`` and ``L_opt`` at ``target_flops``: medians and 50% / 90% intervals."""
    optimum = posterior.optimum(float(target_flops))
    return {"target_flops": float(target_flops), "n_opt": summarize(optimum.n_params),
            "loss_opt": summarize(optimum.loss)}

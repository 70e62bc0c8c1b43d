"""Expected reduction of a target region's summed predictive variance: pool-mode acquisition.

Pool mode can target a *region* (the rows whose loss is to be predicted, e.g. the pool's
highest-compute runs) instead of ``ln N_opt`` at one compute. The quantity to learn is then the
sum of the mean-loss variances of the ``T`` target rows, ``sum_t Var(f_t)``: the V-optimality
criterion of optimal design (Pukelsheim 1993, ch. 9), as in the V-optimal baseline of Li et al.
2026 ("Spend Less, Fit Better", arXiv 2604.22753). With the linear-Gaussian update of
:mod:`bayes_scaling.acquisition` (moments estimated from posterior draws, exact for a linear
Gaussian model, a local linearisation otherwise) observing candidate ``m`` shrinks it by::

    r_m = sum_t Cov(f_t, f_m)^2 / (Var(f_m) + E[sigma_m^2])

and a greedy batch conditions each pick on the earlier ones, as :func:`select_batch` does.

The target rows' *predictive* variance also holds the model's extrapolation discrepancy
(:mod:`bayes_scaling.model`): ``mean_t^2 tau^2 u_t`` to first order, ``u_t`` the distance of
target row ``t`` beyond the edge of the fitted data (largest ``ln N``, ``ln D``, ``ln C``). It
is no noise a candidate averages out, but buying a candidate beyond the current edge moves the
edge and shrinks every ``u_t``; :class:`RegionDiscrepancy` adds that reduction::

    r_m += sum_t E[mean_t^2 tau^2] (u_t(edge) - u_t(max(edge, x_m)))

so the criterion is the expected reduction of the summed predictive variance the model reports
(and the benchmark scores), not of its law part alone. The law part alone is a misspecified
model's view of information: it rewards the rows with extreme tokens per parameter, whose
losses move the fitted exponents most, and on real data those are where the law fits worst
(experiments/results/pool_benchmark.md, the "(law only)" ablation).

Two prices turn information into a score:

- ``"per-flop"`` (strategy ``active-region``): ``r_m / max(cost_m, floor)`` with the pacing floor
  of :func:`bayes_scaling.acquisition.pacing_floor`, exactly the API loop's cost rule;
- ``"v-opt"`` (the published baseline): ``r_m / (cost_m / total_cost)^0.3``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayes_scaling.acquisition import pacing_floor, score_candidates, take_best

__all__ = [
    "VOPT_COST_POWER",
    "RegionDiscrepancy",
    "region_variance_reduction",
    "select_region_batch",
]

#: The cost exponent of Li et al. 2026's V-optimal baseline.
VOPT_COST_POWER = 0.3


def _centred(x) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x - x.mean(axis=0)


@dataclass(frozen=True, kw_only=True)
class RegionDiscrepancy:
    """What the extrapolation discrepancy of the target rows needs (module docstring).

    Attributes
    ----------
    weight : array, shape (T,)
        ``E[mean_t^2 tau^2]`` over the posterior draws (loss units squared per nat).
    target_log : array, shape (T, 3)
        ``ln N``, ``ln D``, ``ln C`` of the target rows.
    candidate_log : array, shape (M, 3)
        The same of the candidates.
    edge : array, shape (3,)
        The fitted data's largest ``ln N``, ``ln D``, ``ln C``.
    """

    weight: np.ndarray
    target_log: np.ndarray
    candidate_log: np.ndarray
    edge: np.ndarray

    def distance(self, edge) -> np.ndarray:
        """``u_t`` beyond ``edge`` (shape ``(..., 3)``), shape ``(..., T)``."""
        edge = np.asarray(edge, np.float64)[..., None, :]
        return np.maximum(0.0, np.max(self.target_log - edge, axis=-1))

    def variance(self, edge) -> float:
        """Summed discrepancy variance of the target rows with the data's edge at ``edge``."""
        return float(np.sum(self.weight * self.distance(edge)))

    def reduction(self, edge) -> np.ndarray:
        """Reduction of :meth:`variance` from buying each candidate, shape ``(M,)``."""
        moved = np.maximum(np.asarray(edge, np.float64)[None, :], self.candidate_log)
        return self.variance(edge) - self.distance(moved) @ self.weight


def region_variance_reduction(target_mean, mean_loss, noise_sd) -> np.ndarray:
    """Linear-Gaussian reduction of ``sum_t Var(f_t)`` from observing each candidate once.

    Parameters
    ----------
    target_mean : array, shape (S, T)
        Posterior draws of the target rows' mean loss.
    mean_loss, noise_sd : array, shape (S, M)
        Draws of each candidate's mean loss and observation noise sd.

    Returns
    -------
    numpy.ndarray, shape (M,)
    """
    t_c, f_c = _centred(target_mean), _centred(mean_loss)
    n = f_c.shape[0]
    cov = t_c.T @ f_c / (n - 1)
    denom = np.sum(f_c**2, axis=0) / (n - 1) + np.mean(np.asarray(noise_sd) ** 2, axis=0)
    return np.sum(cov**2, axis=0) / np.maximum(denom, 1e-300)


def select_region_batch(
    target_mean,
    mean_loss,
    noise_sd,
    costs,
    *,
    remaining: float,
    batch_size: int = 1,
    price: str = "per-flop",
    total_cost: float | None = None,
    planned_queries_left: int | None = None,
    discrepancy: RegionDiscrepancy | None = None,
):
    """Choose up to ``batch_size`` candidates greedily by region variance reduction per price.

    Parameters
    ----------
    target_mean : array, shape (S, T)
    mean_loss, noise_sd : array, shape (S, M)
    costs : array, shape (M,)
    remaining : float
        Budget left; dearer candidates are never chosen.
    batch_size : int
    price : {"per-flop", "v-opt"}
        See the module docstring.
    total_cost : float, optional
        The pool's total cost (needed by ``"v-opt"``).
    planned_queries_left : int, optional
        ``"per-flop"``: the ``k``-th pick is priced at least
        ``pacing_floor(remaining after earlier picks, planned_queries_left - k)``.
    discrepancy : RegionDiscrepancy, optional
        Add the reduction of the target rows' discrepancy variance (module docstring); without
        it only the law's variance counts.

    Returns
    -------
    picks : list of int
    scores : list of float
    reductions : list of float
        Expected reduction of the summed target variance of each pick when chosen.
    """
    if price not in ("per-flop", "v-opt"):
        raise ValueError(f"price: expected 'per-flop' or 'v-opt', got {price!r}")
    if price == "v-opt" and not (total_cost and total_cost > 0):
        raise ValueError(f"total_cost: expected a positive number for 'v-opt', got {total_cost}")
    costs = np.asarray(costs, np.float64)
    t_c, f_c = _centred(target_mean), _centred(mean_loss)
    n = f_c.shape[0]
    cov_tf = t_c.T @ f_c / (n - 1)  # (T, M)
    var_f = np.sum(f_c**2, axis=0) / (n - 1)
    noise_var = np.mean(np.asarray(noise_sd, np.float64) ** 2, axis=0)
    var_region = float(np.sum(t_c**2) / (n - 1))
    edge = None
    if discrepancy is not None:
        edge = np.asarray(discrepancy.edge, np.float64)
        var_region += discrepancy.variance(edge)
    chosen = np.zeros(costs.shape, bool)
    left = float(remaining)
    corrections: list[tuple[np.ndarray, float]] = []
    picks, scores, reductions = [], [], []
    for k in range(batch_size):
        denom = np.maximum(var_f + noise_var, 1e-300)
        law_reduction = np.sum(cov_tf**2, axis=0) / denom
        reduction = law_reduction if edge is None else (
            law_reduction + discrepancy.reduction(edge))
        if price == "per-flop":
            floor = 0.0 if planned_queries_left is None else pacing_floor(
                left, planned_queries_left - k)
            score = score_candidates(reduction, np.where(chosen, 0.0, costs),
                                     g_variance=var_region, remaining_flops=left,
                                     cost_floor=floor)
        else:
            allowed = ~chosen & (costs <= left) & np.isfinite(reduction)
            score = np.where(allowed, reduction / (costs / total_cost) ** VOPT_COST_POWER,
                             -np.inf)
        best = take_best(score, reduction, picks, scores, reductions)
        if best is None:
            break
        chosen[best] = True
        left -= costs[best]
        cov_k = f_c[:, best] @ f_c / (n - 1)
        for row, denom_row in corrections:
            cov_k = cov_k - row[best] * row / denom_row
        d_k = float(var_f[best] + noise_var[best])
        corrections.append((cov_k.copy(), d_k))
        cov_tk = cov_tf[:, best].copy()
        cov_tf = cov_tf - np.outer(cov_tk, cov_k) / d_k
        var_f = var_f - cov_k**2 / d_k
        var_region -= float(np.sum(cov_tk**2) / d_k)
        if edge is not None:
            moved = np.maximum(edge, discrepancy.candidate_log[best])
            var_region -= discrepancy.variance(edge) - discrepancy.variance(moved)
            edge = moved
    return picks, scores, reductions

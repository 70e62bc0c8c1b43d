"""Expected reduction of posterior uncertainty per FLOP of a query: two criteria.

- ``n-opt`` (the criterion DESIGN.md section 1 names): the expected reduction of the posterior
  variance of ``g = ln N_opt(target)`` (:func:`expected_variance_reduction`).
- ``decision`` (the loop's default, see :mod:`bayes_scaling.loop`): the expected reduction of a
  decision risk ``R = sum_k w_k Var(q_k)`` over several
  quantities the recommendation depends on (:func:`expected_risk_reduction`; the loop uses
  ``ln N_opt``, ``ln lr*`` and the loss at the target, each weighted by what its error costs, see
  :mod:`bayes_scaling.decision`). ``n-opt`` is its one-quantity, unit-weight case.

Everything here is a pure function of posterior draws, vectorised over all candidate queries at
once; no numpyro, no I/O.

Estimator
---------
Let ``g`` be the quantity to learn (``ln N_opt`` at the target compute) and ``f_m`` the model's
mean loss of candidate ``m``; a query returns ``y_m = f_m + eps`` with ``eps ~ N(0, sigma_m^2)``.
If ``(g, f_m)`` are jointly Gaussian under the posterior, observing ``y_m`` shrinks the variance of
``g`` by exactly (the Kalman / linear-Gaussian update, independent of the value observed)::

    r_m = Cov(g, f_m)^2 / (Var(f_m) + E[sigma_m^2])

We estimate the moments from the ``S`` posterior draws, which costs ``O(S M)`` for ``M``
candidates (one matrix-vector product) and needs no inner simulation. It is exact for the
linear-Gaussian model and a first-order (local linearisation) approximation otherwise; the
nested Monte Carlo estimator :func:`expected_variance_reduction_mc` (simulate outcomes, reweight
the draws by their likelihood, average the posterior variance) is the brute-force check used in the
tests. The linear estimator was chosen because it is deterministic given the draws (no outcome
noise in the ranking), cheap enough for thousands of candidates per step, and it cannot be gamed by
the few heavy-weight draws that make importance reweighting noisy.

Cost
----
The score is ``r_m / max(cost_m, floor)``: expected information per FLOP, where every query is
charged at least ``floor`` FLOPs. This is the cost-aware acquisition of BoTorch's cost-aware
utilities (information gain divided by the cost of the evaluation), with one change that matters
here. A per-FLOP score alone would buy tiny runs (1e13 FLOPs costs 1e5 times less than 1e18)
that carry almost nothing: the real API's losses below about 1e14 FLOPs were flat near the
initial loss, and each query also costs a refit and one of a limited number of queries. A fixed
floor (an earlier version used budget / max queries) solves that early on but not late: with
most of the budget unspent and the queries running out, the loop kept buying cheap runs and
stopped with half the budget left, when the most valuable runs are the large ones near the
compute frontier (a run at 1e18 FLOPs makes a 1e19 target a 10x extrapolation instead of 100x,
and the law's exponents are pinned by the widest lever arm in compute).

The floor is therefore dynamic (:func:`pacing_floor`): ``remaining FLOPs / remaining planned
queries``. Early on it is about ``budget / planned queries``, so cheap runs are not free: every
query below the floor is priced as if it cost the floor, and among them only information counts.
As queries are spent without spending the FLOPs, the floor rises; with one planned query left it
equals the whole remaining budget, so every affordable query is priced the same and the most
informative one is bought whatever its cost. The loop therefore ends with the budget (nearly)
spent, unless the interval of ``g`` falls below the user's stop width first. There is no cut on
minimum information by default (``min_relative_reduction = 0``): such a cut lets the loop stall
with budget left when the posterior is already narrow, although a large run at the frontier still
checks the extrapolation. Candidates that cost nothing (a repeat already paid, which would return
the same loss and so carry no information) or more than the remaining budget score ``-inf`` and
are never chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "AcquisitionConfig",
    "expected_variance_reduction",
    "expected_risk_reduction",
    "expected_risk_reduction_mc",
    "expected_variance_reduction_mc",
    "pacing_floor",
    "score_candidates",
    "select_batch",
    "take_best",
]


@dataclass(frozen=True, kw_only=True)
class AcquisitionConfig:
    """How queries are scored.

    Parameters
    ----------
    cost_floor : float
        A static minimum price: every query is charged at least this many FLOPs in the per-FLOP
        score, on top of the dynamic :func:`pacing_floor` when the loop passes one.
    min_relative_reduction : float
        A query that promises less than this fraction of ``Var(g)`` scores zero (default 0: off,
        because such a cut can stop the loop with budget left).
    """

    cost_floor: float = 0.0
    min_relative_reduction: float = 0.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.cost_floor) and self.cost_floor >= 0):
            raise ValueError(f"cost_floor: expected a finite number >= 0, got {self.cost_floor}")
        if not 0 <= self.min_relative_reduction < 1:
            raise ValueError(
                "min_relative_reduction: expected a number in [0, 1), "
                f"got {self.min_relative_reduction}"
            )


def pacing_floor(remaining_flops: float, planned_queries_left: int) -> float:
    """Return the dynamic cost floor: ``remaining_flops / max(planned_queries_left, 1)``.

    The FLOPs each of the remaining planned queries would get if the rest of the budget were
    shared equally; past the plan it is the whole remaining budget (see the module docstring).
    """
    return float(remaining_flops) / max(int(planned_queries_left), 1)


@jax.jit
def expected_variance_reduction(g, mean_loss, noise_sd):
    """Linear-Gaussian expected reduction of ``Var(g)`` from one noisy observation of each query.

    Parameters
    ----------
    g : array, shape (S,)
        Posterior draws of the quantity to learn.
    mean_loss : array, shape (S, M)
        Posterior draws of each candidate's mean loss.
    noise_sd : array, shape (S, M)
        Posterior draws of each candidate's observation noise standard deviation.

    Returns
    -------
    array, shape (M,)
        ``Cov(g, f_m)^2 / (Var(f_m) + E[sigma_m^2])``, in units of ``g`` squared.
    """
    _, cov, var_f, _, noise_var = _draw_moments(g, mean_loss, noise_sd)
    return cov**2 / (var_f + noise_var)


@jax.jit
def expected_risk_reduction(quantities, weights, mean_loss, noise_sd):
    """Linear-Gaussian expected reduction of ``R = sum_k w_k Var(q_k)`` from one query each.

    Parameters
    ----------
    quantities : array, shape (S, K)
        Posterior draws of the quantities the decision depends on.
    weights : array, shape (K,)
        Risk per unit variance of each quantity (``w_k >= 0``).
    mean_loss, noise_sd : array, shape (S, M)
        As in :func:`expected_variance_reduction`.

    Returns
    -------
    array, shape (M,)
        ``sum_k w_k Cov(q_k, f_m)^2 / (Var(f_m) + E[sigma_m^2])``, in units of ``R``.
    """
    _, cov, var_f, _, noise_var = _draw_moments(quantities, mean_loss, noise_sd)
    return jnp.asarray(weights, jnp.float64) @ cov**2 / (var_f + noise_var)


def _draw_moments(g, mean_loss, noise_sd):
    """Moments over the draws; ``g`` is ``(S,)`` or ``(S, K)``.

    Returns centred ``f`` (S, M), ``Cov(g, f)`` (M,) or (K, M), ``Var f`` (M,), ``Var g``
    (scalar or (K,)) and ``E[sigma^2]`` (M,).
    """
    g = jnp.asarray(g, jnp.float64)
    f = jnp.asarray(mean_loss, jnp.float64)
    sd = jnp.asarray(noise_sd, jnp.float64)
    n = g.shape[0]
    g_c = g - g.mean(axis=0)
    f_c = f - f.mean(axis=0)
    cov = jnp.tensordot(g_c, f_c, axes=(0, 0)) / (n - 1)
    var_f = jnp.sum(f_c**2, axis=0) / (n - 1)
    var_g = jnp.sum(g_c**2, axis=0) / (n - 1)
    return f_c, cov, var_f, var_g, jnp.mean(sd**2, axis=0)


def expected_variance_reduction_mc(rng_key, g, mean_loss, noise_sd, *, num_outcomes=256):
    """Brute-force nested Monte Carlo estimate of the same reduction (a check, not a hot path).

    For each candidate, simulate ``num_outcomes`` outcomes ``y = f_s + sigma_s eps`` from random
    draws ``s``, reweight all draws by the likelihood ``N(y; f_s', sigma_s')``, and average the
    reweighted variance of ``g``. Returns ``Var(g) - E_y[Var(g | y)]``, shape (M,).
    """
    g = jnp.asarray(g, jnp.float64)
    f = jnp.asarray(mean_loss, jnp.float64)
    sd = jnp.asarray(noise_sd, jnp.float64)
    n_draws = g.shape[0]
    key_pick, key_eps = jax.random.split(rng_key)
    picks = jax.random.randint(key_pick, (num_outcomes,), 0, n_draws)
    eps = jax.random.normal(key_eps, (num_outcomes, f.shape[1]))
    outcomes = f[picks] + sd[picks] * eps  # (O, M)

    def one_candidate(f_m, sd_m, y_m):
        log_w = -0.5 * ((y_m[:, None] - f_m[None, :]) / sd_m[None, :]) ** 2 - jnp.log(sd_m)
        w = jax.nn.softmax(log_w, axis=1)  # (O, S)
        mean = w @ g
        var = w @ g**2 - mean**2
        return jnp.var(g) - jnp.mean(var)

    return jax.vmap(one_candidate, in_axes=(1, 1, 1))(f, sd, outcomes)


def expected_risk_reduction_mc(rng_key, quantities, weights, mean_loss, noise_sd, *,
                               num_outcomes=256):
    """Brute-force nested Monte Carlo estimate of :func:`expected_risk_reduction` (a check).

    ``sum_k w_k (Var(q_k) - E_y[Var(q_k | y)])`` with the same simulated outcomes and likelihood
    reweighting as :func:`expected_variance_reduction_mc` for every quantity; shape (M,).
    """
    quantities = jnp.asarray(quantities, jnp.float64)
    per_quantity = jnp.stack([
        expected_variance_reduction_mc(rng_key, quantities[:, k], mean_loss, noise_sd,
                                       num_outcomes=num_outcomes)
        for k in range(quantities.shape[1])
    ])
    return jnp.asarray(weights, jnp.float64) @ per_quantity


def score_candidates(
    reduction,
    costs,
    *,
    g_variance: float,
    remaining_flops: float,
    cost_floor: float = 0.0,
    config: AcquisitionConfig | None = None,
):
    """Per-FLOP score of each candidate; ``-inf`` for those that must not be chosen.

    Parameters
    ----------
    reduction : array, shape (M,)
        Expected reduction of ``Var(g)`` (from :func:`expected_variance_reduction`).
    costs : array, shape (M,)
        FLOPs each query would be charged; 0 for a repeat already paid.
    g_variance : float
        Current posterior variance of ``g``.
    remaining_flops : float
        Budget left; dearer queries score ``-inf``.
    cost_floor : float
        The dynamic floor of this pick (:func:`pacing_floor`); the larger of it and
        ``config.cost_floor`` is used.
    config : AcquisitionConfig, optional
        Static cost floor and minimum information (defaults of :class:`AcquisitionConfig`).

    Returns
    -------
    numpy.ndarray, shape (M,)
    """
    config = config or AcquisitionConfig()
    reduction = np.asarray(reduction, np.float64)
    costs = np.asarray(costs, np.float64)
    floor = max(float(cost_floor), config.cost_floor, 1.0)
    score = reduction / np.maximum(costs, floor)
    score = np.where(reduction >= config.min_relative_reduction * g_variance, score, 0.0)
    allowed = (costs > 0) & (costs <= remaining_flops) & np.isfinite(reduction)
    return np.where(allowed, score, -np.inf)


def take_best(score, reduction, picks: list, scores: list, reductions: list) -> int | None:
    """Append the best-scoring candidate to a greedy batch; None when none scores above 0.

    ``picks``, ``scores`` and ``reductions`` grow by the index, its score and its reduction.
    """
    best = int(np.argmax(score))
    if not np.isfinite(score[best]) or score[best] <= 0:
        return None
    picks.append(best)
    scores.append(float(score[best]))
    reductions.append(float(reduction[best]))
    return best


def select_batch(
    g,
    mean_loss,
    noise_sd,
    costs,
    *,
    remaining_flops: float,
    batch_size: int = 1,
    planned_queries_left: int | None = None,
    config: AcquisitionConfig | None = None,
    weights=None,
    allowed=None,
):
    """Choose up to ``batch_size`` queries greedily, conditioning on each pick before the next.

    ``g`` is the draws of ``ln N_opt`` (shape ``(S,)``: the ``n-opt`` criterion) or of several
    quantities (``(S, K)`` with ``weights`` of shape ``(K,)``: the ``decision`` criterion's risk
    ``sum_k w_k Var(q_k)``); ``allowed`` (bool, shape ``(M,)``, optional) restricts the picks, e.g.
    to the support of a budget plan (:mod:`bayes_scaling.design`).

    After a pick ``k`` the joint Gaussian moments are updated as if ``y_k`` were observed
    (``Cov(a, b) -= Cov(a, f_k) Cov(f_k, b) / (Var f_k + sigma_k^2)``), so a second pick is not
    a near-copy of the first. The update needs no outcome value, so the batch is chosen before any
    query is paid.

    With ``planned_queries_left`` the ``k``-th pick (from 0) is priced with the dynamic floor
    ``pacing_floor(remaining after the earlier picks, planned_queries_left - k)``; without it only
    ``config.cost_floor`` applies.

    Returns
    -------
    picks : list of int
        Indices of the chosen candidates, in order (may be shorter than ``batch_size`` when
        nothing else is affordable or informative).
    scores : list of float
        The score of each pick when it was chosen.
    reductions : list of float
        Its expected reduction of ``Var(g)`` (of the risk, with several quantities) when chosen.
    floors : list of float
        The cost floor the pick was priced with.
    """
    config = config or AcquisitionConfig()
    costs = np.asarray(costs, np.float64)
    g = np.asarray(g, np.float64)
    if g.ndim == 1:
        g, weights = g[:, None], np.ones(1)
    weights = np.asarray(weights, np.float64)
    if weights.shape != g.shape[1:] or np.any(weights < 0):
        raise ValueError(f"weights: expected {g.shape[1]} numbers >= 0, got {weights!r}")
    f_c, cov_qf, var_f, var_q, noise_var = (
        np.array(moment) for moment in _draw_moments(g, mean_loss, noise_sd)
    )
    n = f_c.shape[0]
    chosen_mask = np.zeros(costs.shape, bool)
    if allowed is not None:
        chosen_mask |= ~np.asarray(allowed, bool)
    remaining = float(remaining_flops)
    picks, scores, reductions, floors = [], [], [], []
    # Low-rank corrections to the candidates' covariance from earlier picks: (k, M) rows.
    corrections: list[tuple[np.ndarray, float]] = []
    for k in range(batch_size):
        reduction = weights @ cov_qf**2 / np.maximum(var_f + noise_var, 1e-300)
        floor = 0.0
        if planned_queries_left is not None:
            floor = pacing_floor(remaining, planned_queries_left - k)
        score = score_candidates(
            reduction,
            np.where(chosen_mask, 0.0, costs),
            g_variance=float(weights @ var_q),
            remaining_flops=remaining,
            cost_floor=floor,
            config=config,
        )
        best = take_best(score, reduction, picks, scores, reductions)
        if best is None:
            break
        floors.append(max(floor, config.cost_floor))
        chosen_mask[best] = True
        remaining -= costs[best]
        # Covariance of f_best with every candidate, corrected for earlier picks.
        cov_k = f_c[:, best] @ f_c / (n - 1)
        for row, denom_row in corrections:
            cov_k = cov_k - row[best] * row / denom_row
        denom = var_f[best] + noise_var[best]
        corrections.append((cov_k.copy(), float(denom)))
        gain = cov_qf[:, best] / denom
        var_q = var_q - gain * cov_qf[:, best]
        cov_qf = cov_qf - gain[:, None] * cov_k[None, :]
        var_f = var_f - cov_k**2 / denom
    return picks, scores, reductions, floors

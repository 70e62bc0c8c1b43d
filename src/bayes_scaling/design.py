"""Cost-constrained c-optimal design: the budget plan of ``active`` and the report's yardstick.

The quantity is ``g = ln N_opt(target)``. Around a posterior the model is linearised
statistically (:func:`linearise`): in whitened parameter coordinates ``z`` (the posterior draws'
principal axes scaled to unit variance), ``g ~ c . z`` and each candidate's mean loss
``f_m ~ x_m . z`` with ``c = Cov(z, g)`` and ``x_m = Cov(z, f_m)``, the least-squares fit over the
draws (the same moments the acquisition's linear-Gaussian update uses). A design buying ``n_m``
runs of candidate ``m`` (noise variance ``s_m^2 = E[sigma_m^2]``) adds the information
``M(n) = sum_m n_m x_m x_m' / s_m^2``.

:func:`c_optimal_design` solves the continuous relaxation of

    minimise   c' (M0 + M(n))^-1 c    over  n_m >= 0   subject to  sum_m n_m cost_m <= budget,

with every run priced at ``max(train_flops, floor)`` and ``M0`` the information already held
(the Bayesian c-optimal design; Chaloner & Verdinelli 1995). With ``xi_m = n_m cost_m / budget``
(the fraction of the budget spent on ``m``) it is a convex problem over the simplex for the
regressors ``u_m = x_m / sqrt(s_m^2 cost_m / budget)``, solved by Frank-Wolfe with a line search
to a duality gap of 1e-4 of the objective. Without ``M0`` (from the data alone) Elfving's theorem
(Elfving 1952; Pukelsheim, *Optimal Design of Experiments*, 2006, sec. 2.14) makes it a linear
program: the largest ``t`` with ``t c = sum_m (a_m - b_m) u_m``, ``sum_m (a_m + b_m) = 1``,
``a, b >= 0``; the optimal variance is ``1 / t^2`` and ``xi = a + b`` (``scipy.optimize.linprog``,
HiGHS).

Used twice:

- :func:`design_yardstick`: under the final posterior, the best achievable sd of ``g`` for the
  whole budget with every run priced at least ``budget / planned queries`` (so the bound cannot
  buy thousands of tiny runs), the prior's information ``M0`` being the final posterior's minus
  that of the runs bought; the sd the runs actually bought give under the same linearisation; and
  their ratio, the design efficiency (1: as good as the optimal design).
- :func:`plan_support`: the ``active`` strategy's non-myopic budget plan, re-solved after every
  refit under the current posterior (``M0`` its precision) for the remaining budget over the
  current candidates; the acquisition then only buys from the plan's support (see
  :class:`bayes_scaling.loop.ActiveConfig`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import linprog

from bayes_scaling.space import RunConfig

if TYPE_CHECKING:
    from bayes_scaling.posterior import PosteriorQueries

__all__ = [
    "DesignResult",
    "Linearisation",
    "c_optimal_design",
    "design_sd",
    "design_yardstick",
    "linearise",
    "parameter_draws",
    "plan_support",
    "summarize_split",
]

logger = logging.getLogger(__name__)

#: Relative singular values below this are dropped when whitening the draws.
_RANK_TOL = 1e-8
#: Budget fractions below this are outside a design's support.
SUPPORT_TOL = 1e-4


@dataclass(frozen=True)
class Linearisation:
    """``g ~ c . z`` and ``f_m ~ x_m . z`` in whitened coordinates ``z`` (unit covariance).

    Attributes
    ----------
    c : numpy.ndarray, shape (r,)
    x : numpy.ndarray, shape (M, r)
    """

    c: np.ndarray
    x: np.ndarray


@dataclass(frozen=True)
class DesignResult:
    """The solution of :func:`c_optimal_design`.

    Attributes
    ----------
    sd : float
        The optimal sd of ``g`` (``inf`` when no design of the candidates identifies ``g``).
    budget_fraction : numpy.ndarray, shape (M,)
        ``xi_m``: the fraction of the budget spent on each candidate (sums to 1).
    runs : numpy.ndarray, shape (M,)
        ``n_m = xi_m budget / cost_m``: the (continuous) number of runs of each.
    """

    sd: float
    budget_fraction: np.ndarray
    runs: np.ndarray

    @property
    def support(self) -> np.ndarray:
        """Indices of the candidates the design spends on (budget fraction > ``SUPPORT_TOL``)."""
        return np.flatnonzero(self.budget_fraction > SUPPORT_TOL)


def linearise(param_draws: np.ndarray, g: np.ndarray, mean_loss: np.ndarray) -> Linearisation:
    """Statistical linearisation of ``g`` and the candidates' mean losses over posterior draws.

    Parameters
    ----------
    param_draws : array, shape (S, P)
        The posterior draws of the model's parameters (any parametrisation: the result is
        invariant to linear reparametrisation).
    g : array, shape (S,)
    mean_loss : array, shape (S, M)

    Returns
    -------
    Linearisation
        ``c = Cov(z, g)``, ``x_m = Cov(z, f_m)`` with ``z`` the whitened draws (rank ``r``: the
        directions with a relative singular value above ``1e-8``).
    """
    theta = np.asarray(param_draws, np.float64)
    n = theta.shape[0]
    centred = theta - theta.mean(axis=0)
    scale = centred.std(axis=0)
    centred = centred / np.where(scale > 0, scale, 1.0)
    u, sv, _ = np.linalg.svd(centred, full_matrices=False)
    keep = sv > _RANK_TOL * sv.max()
    z = u[:, keep] * np.sqrt(n - 1)  # unit covariance
    g_c = np.asarray(g, np.float64) - np.mean(g)
    f = np.asarray(mean_loss, np.float64)
    f_c = f - f.mean(axis=0)
    return Linearisation(c=z.T @ g_c / (n - 1), x=f_c.T @ z / (n - 1))


def c_optimal_design(c, x, noise_var, costs, budget: float, *,
                     prior_information=None) -> DesignResult:
    """Continuous cost-constrained c-optimal design (module docstring).

    Parameters
    ----------
    c : array, shape (r,)
    x : array, shape (M, r)
        Regressors of the candidates.
    noise_var : array, shape (M,)
        Observation noise variance of each candidate.
    costs : array, shape (M,)
        Price of one run of each (already floored by the caller), > 0.
    budget : float
    prior_information : array, shape (r, r), optional
        Information already held (the Bayesian design minimises ``c' (M0 + M(n))^-1 c``). None:
        from the data alone, by Elfving's linear program (exact); given: by Frank-Wolfe with a
        line search over the budget fractions, stopped at a duality gap of ``1e-4`` of the
        objective (or after 500 steps).

    Returns
    -------
    DesignResult
    """
    c = np.asarray(c, np.float64)
    x = np.asarray(x, np.float64)
    costs = np.asarray(costs, np.float64)
    if np.any(costs <= 0) or budget <= 0:
        raise ValueError(f"costs and budget: expected positive numbers, got min cost "
                         f"{costs.min() if costs.size else None!r} and budget {budget!r}")
    m = x.shape[0]
    if m == 0:
        return DesignResult(sd=float("inf"), budget_fraction=np.zeros(0), runs=np.zeros(0))
    regressors = x / np.sqrt(np.asarray(noise_var, np.float64) * costs / budget)[:, None]
    if prior_information is not None:
        fraction, variance = _bayesian_design(c, regressors, np.asarray(prior_information,
                                                                        np.float64))
        return DesignResult(sd=float(np.sqrt(variance)), budget_fraction=fraction,
                            runs=fraction * budget / costs)
    norm = float(np.linalg.norm(c))
    if norm == 0:
        return DesignResult(sd=0.0, budget_fraction=np.zeros(m), runs=np.zeros(m))
    c_unit = c / norm
    # Variables [a (M), b (M), t]; maximise t.
    a_eq = np.vstack([
        np.hstack([regressors.T, -regressors.T, -c_unit[:, None]]),
        np.hstack([np.ones(2 * m), [0.0]]),
    ])
    b_eq = np.zeros(a_eq.shape[0])
    b_eq[-1] = 1.0
    objective = np.zeros(2 * m + 1)
    objective[-1] = -1.0
    solution = linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    if solution.status != 0 or solution.x[-1] <= 0:
        logger.warning("c-optimal design: no design of the %d candidates identifies the "
                       "quantity (%s)", m, solution.message)
        return DesignResult(sd=float("inf"), budget_fraction=np.zeros(m), runs=np.zeros(m))
    fraction = solution.x[:m] + solution.x[m:2 * m]
    fraction = fraction / fraction.sum()
    return DesignResult(sd=norm / float(solution.x[-1]), budget_fraction=fraction,
                        runs=fraction * budget / costs)


def _bayesian_design(c, regressors, prior, *, max_steps: int = 500, rel_gap: float = 1e-4):
    """Frank-Wolfe on ``phi(xi) = c' (M0 + sum_m xi_m u_m u_m')^-1 c`` over the simplex.

    Returns the budget fractions and ``phi`` at them (a feasible design, so an upper bound on the
    optimum, within the duality gap of it). The gradient is ``-(u_m' w)^2`` with ``w = A^-1 c``;
    each step moves towards the best vertex, the step chosen on a grid of 64 and refined once
    (all in one batched solve); the data's information is updated in place.
    """
    m, r = regressors.shape
    eigenvalues = np.linalg.eigvalsh(prior)
    fraction = np.zeros(m)
    if eigenvalues.min() > _RANK_TOL * max(eigenvalues.max(), 1e-300):
        # Start at the single best candidate; with a singular prior, at the uniform design.
        fraction[int(np.argmax((regressors @ np.linalg.solve(prior, c)) ** 2))] = 1.0
    else:
        fraction[:] = 1.0 / m
    data = (regressors * fraction[:, None]).T @ regressors
    # A ridge far below any information that matters keeps every trial matrix invertible.
    prior = prior + _RANK_TOL * max(float(np.trace(prior + data)) / r, 1e-300) * np.eye(r)
    coarse = np.linspace(0.0, 1.0, 64)

    def best_step(vertex, grid):
        mats = (1 - grid)[:, None, None] * data + grid[:, None, None] * vertex + prior
        solved = np.linalg.solve(mats, np.broadcast_to(c[:, None], (grid.size, r, 1)))
        values = np.einsum("i,gi->g", c, solved[..., 0])
        return grid[int(np.argmin(values))]

    for _ in range(max_steps):
        w = np.linalg.solve(prior + data, c)
        gains = (regressors @ w) ** 2
        best = int(np.argmax(gains))
        gap = float(gains[best] - fraction @ gains)
        if gap <= rel_gap * float(c @ w):
            break
        vertex = np.outer(regressors[best], regressors[best])
        step = best_step(vertex, coarse)
        step = best_step(vertex, np.clip(step + np.linspace(-1.0, 1.0, 64) / 63, 0.0, 1.0))
        fraction *= 1 - step
        fraction[best] += step
        data = (1 - step) * data + step * vertex
    return fraction, float(c @ np.linalg.solve(prior + data, c))


def design_sd(c, x, noise_var, runs, *, prior_information=None) -> float:
    """Sd of ``g`` from ``runs`` (shape (M,)) of each candidate: ``sqrt(c' (M0 + M)^+ c)``.

    ``M0`` is ``prior_information`` (default none: from the data alone).

    ``inf`` when ``c`` is not in the span of the information matrix (eigenvalues below
    ``1e-12`` of the largest count as zero): the design does not identify ``g``.
    """
    c = np.asarray(c, np.float64)
    x = np.asarray(x, np.float64)
    weights = np.asarray(runs, np.float64) / np.asarray(noise_var, np.float64)
    info = (x * weights[:, None]).T @ x
    if prior_information is not None:
        info = info + np.asarray(prior_information, np.float64)
    eigenvalues, vectors = np.linalg.eigh(info)
    seen = eigenvalues > _RANK_TOL**1.5 * max(float(eigenvalues.max()), 1e-300)
    along = vectors.T @ c
    if np.linalg.norm(along[~seen]) > 1e-6 * max(float(np.linalg.norm(c)), 1e-300):
        return float("inf")
    return float(np.sqrt(np.sum(along[seen] ** 2 / eigenvalues[seen])))


def parameter_draws(posterior: PosteriorQueries) -> np.ndarray:
    """Every scalar site of ``posterior.draws`` as a column, shape ``(S, P)``."""
    columns = [np.asarray(v, np.float64) for v in posterior.draws.values()
               if np.ndim(v) == 1 and len(v) == posterior.num_draws]
    return np.column_stack(columns)


def plan_support(param_draws, g, mean_loss, noise_var, flops, *, remaining_flops: float,
                 floor: float) -> tuple[np.ndarray, dict[int, float]]:
    """The budget plan for what is left: which candidates the c-optimal design would buy.

    Solves the Bayesian :func:`c_optimal_design` for ``g = ln N_opt(target)`` linearised under
    the current posterior (:func:`linearise` of ``param_draws``, ``g`` and the candidates'
    ``mean_loss`` draws; the current posterior is the prior information) with the remaining
    budget, every run priced at ``max(flops, floor)``. It minimises the posterior variance of
    ``ln N_opt(target)`` that the whole remaining budget reaches if spent on the locally optimal
    mix of candidates (the non-myopic plan), not the next query's gain; re-solved after every
    refit, the loop buys from its support.

    Parameters
    ----------
    param_draws : array, shape (S, P)
    g : array, shape (S,)
    mean_loss : array, shape (S, M)
    noise_var : array, shape (M,)
    flops : array, shape (M,)
        Each candidate's compute.
    remaining_flops, floor : float

    Returns
    -------
    allowed : numpy.ndarray of bool, shape (M,)
        The plan's support (all True when the plan identifies nothing: no restriction).
    split : dict of int to float
        Budget fraction of each compute level in the plan.
    """
    flops = np.asarray(flops, np.float64)
    if flops.size == 0:
        return np.zeros(0, bool), {}
    lin = linearise(param_draws, g, mean_loss)
    # In the whitened coordinates the current posterior's precision is the identity.
    plan = c_optimal_design(lin.c, lin.x, noise_var, np.maximum(flops, max(floor, 1.0)),
                            remaining_flops, prior_information=np.eye(lin.c.size))
    split: dict[int, float] = {}
    for i in plan.support:
        split[int(flops[i])] = split.get(int(flops[i]), 0.0) + float(plan.budget_fraction[i])
    if not np.isfinite(plan.sd):
        return np.ones(flops.size, bool), split
    allowed = np.zeros(flops.size, bool)
    allowed[plan.support] = True
    return allowed, split


def design_yardstick(posterior: PosteriorQueries, featurize: Callable,
                     bought: Sequence[RunConfig], candidates: Sequence[RunConfig], *,
                     target_flops: float, budget_flops: float,
                     planned_queries: int) -> dict[str, Any]:
    """The optimal-design yardstick of a finished run, under its final posterior.

    Parameters
    ----------
    posterior : PosteriorQueries
        The final posterior (the linearisation point).
    featurize : callable
        ``configs -> features`` of the posterior's model.
    bought : sequence of RunConfig
        Every run paid (repeats count once).
    candidates : sequence of RunConfig
        The affordable queries the optimal design may buy (the loop's candidate generator over
        the whole budget).
    target_flops, budget_flops : float
    planned_queries : int
        Every run of the optimal design is priced at least ``budget_flops / planned_queries``.

    Returns
    -------
    dict
        ``oracle_sd_ln_n_opt`` (the optimal design's sd of ``ln N_opt(target)``, prior
        information included), ``achieved_sd_ln_n_opt`` (the bought runs' sd under the same
        linearisation and prior information; close to the posterior's own),
        ``design_efficiency`` (their ratio, oracle / achieved: at most about 1, above 1 only
        where the runs bought were cheaper than the floor the bound is held to),
        ``posterior_sd_ln_n_opt`` (the final posterior draws' sd), and ``oracle_design``: the
        optimal design's budget fraction per compute level, its floor and its number of
        candidates.
    """
    unique = list({c.key(): c for c in bought}.values())
    features = featurize(list(candidates) + unique)
    mean = np.asarray(posterior.predict_mean(features), np.float64)
    noise_var = np.mean(np.asarray(posterior.noise_sd(features), np.float64) ** 2, axis=0)
    g = np.log(np.asarray(posterior.optimum(target_flops).n_params, np.float64))
    lin = linearise(parameter_draws(posterior), g, mean)
    m = len(candidates)
    floor = budget_flops / max(int(planned_queries), 1)
    flops = np.array([c.train_flops for c in candidates], np.float64)
    prior = _prior_information(lin.x[m:], noise_var[m:])
    oracle = c_optimal_design(lin.c, lin.x[:m], noise_var[:m], np.maximum(flops, floor),
                              budget_flops, prior_information=prior)
    achieved = design_sd(lin.c, lin.x[m:], noise_var[m:], np.ones(len(unique)),
                         prior_information=prior)
    split: dict[str, float] = {}
    for i in oracle.support:
        key = f"{flops[i]:.0e}"
        split[key] = split.get(key, 0.0) + float(oracle.budget_fraction[i])
    efficiency = oracle.sd / achieved if np.isfinite(achieved) and achieved > 0 else 0.0
    return {
        "oracle_sd_ln_n_opt": float(oracle.sd),
        "achieved_sd_ln_n_opt": float(achieved),
        "design_efficiency": float(efficiency),
        "posterior_sd_ln_n_opt": float(np.std(g, ddof=1)),
        "oracle_design": {"budget_fraction_by_flops": split, "floor_flops": float(floor),
                          "num_candidates": m},
    }


def _prior_information(x_bought, noise_var_bought) -> np.ndarray:
    """What the prior alone knew, in the whitened coordinates: ``I - M(bought)``, made PSD.

    The final posterior's precision there is the identity, the sum of the prior's and the bought
    data's information (to the linearisation's accuracy); negative eigenvalues (where the
    linearisation overstates the data's information) are set to zero.
    """
    data = (x_bought / noise_var_bought[:, None]).T @ x_bought
    eigenvalues, vectors = np.linalg.eigh(np.eye(data.shape[0]) - data)
    return (vectors * np.maximum(eigenvalues, 0.0)) @ vectors.T


def summarize_split(split: Mapping[int, float]) -> str:
    """``'1e+18: 0.62, 3e+17: 0.38'``: a plan's budget split for the log."""
    return ", ".join(f"{k:.0e}: {v:.2f}" for k, v in sorted(split.items(), reverse=True))

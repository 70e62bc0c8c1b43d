"""The ``isoflop-grid`` baseline: a fixed Chinchilla-style design and classic power-law fits.

Design (Hoffmann et al. 2022, approach 2, as most public CS336 solutions did it): a few IsoFLOP
profiles, each a handful of model sizes log-spaced around Chinchilla's 20 tokens per parameter,
batch size 128 and a learning rate of 1e-3 scaled down for larger models
(``1e-3 (N / 2e7)^(-1/3)``, clipped to the API's range). :func:`plan_grid` picks the computes
(consecutive API levels) and the number of sizes that spend as much of the budget as possible.

Fits: per profile the vertex of a quadratic in ``ln N`` gives the minimum
(:func:`bayes_scaling.isoflops.quadratic_vertex`: inside the sizes run, else the best run);
``ln N*`` is regressed linearly on ``ln C`` and extrapolated to the target; the optimal losses
are fitted by ``L*(C) = E + k C^(-c)`` (a pure power law when that fails). A bootstrap over the
runs of each profile gives intervals, including the ``predicted_loss`` draws of the recommendation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import jax
import numpy as np
from scipy.optimize import curve_fit

from bayes_scaling.candidates import shape_for_n_params
from bayes_scaling.isoflops import quadratic_vertex
from bayes_scaling.params import HEAD_DIM, count_params, non_embedding_params
from bayes_scaling.rng import numpy_generator
from bayes_scaling.session import Session, StrategyResult
from bayes_scaling.space import LEARNING_RATE_RANGE, TRAIN_FLOPS, RunConfig
from bayes_scaling.summary import equal_tailed

__all__ = [
    "IsoflopGridConfig",
    "fit_isoflop_grid",
    "grid_design",
    "grid_learning_rate",
    "minimum_grid_budget",
    "plan_grid",
    "run_isoflop_grid",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class IsoflopGridConfig:
    """Settings of the ``isoflop-grid`` strategy.

    Parameters
    ----------
    fit_baseline_posterior : bool
        Also fit the Bayesian model to the grid's runs (for the report).
    num_bootstrap : int
        Bootstrap resamples of the power-law fits.
    """

    fit_baseline_posterior: bool = True
    num_bootstrap: int = 200

    def __post_init__(self) -> None:
        value = self.num_bootstrap
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"num_bootstrap: expected an integer >= 1, got {value!r}")


def grid_learning_rate(n_params: float, *, clip: bool = True) -> float:
    """Return the baseline's learning rate: 1e-3 scaled down as ``(N / 2e7)^(-1/3)`` above 2e7."""
    value = 1e-3 * min(1.0, (n_params / 2e7) ** (-1.0 / 3.0))
    if clip:
        value = min(max(value, LEARNING_RATE_RANGE[0]), LEARNING_RATE_RANGE[1])
    return float(f"{value:.4g}")


def plan_grid(budget_flops: float, *, sizes=(4, 5, 6, 7), num_levels=(3, 4, 5)):
    """Choose computes and sizes per profile that spend the most of the budget.

    Returns ``(levels, num_sizes)``: consecutive API compute levels (at least 1e15) and the
    number of model sizes per level. Ties go to more levels, then larger computes.
    """
    options = [c for c in TRAIN_FLOPS if c >= 1e15]
    best = None
    for length in num_levels:
        for start in range(len(options) - length + 1):
            window = options[start : start + length]
            for n in sizes:
                spend = n * sum(window)
                if spend <= budget_flops:
                    rank = (spend, length, window[-1])
                    if best is None or rank > best[0]:
                        best = (rank, window, n)
    if best is None:
        return [options[0]], 1
    return list(best[1]), best[2]


def minimum_grid_budget(*, sizes=(4, 5, 6, 7), num_levels=(3, 4, 5)) -> float:
    """Return the smallest budget :func:`plan_grid` can spend on a full design (4e16 FLOPs).

    Below it no window of consecutive levels with enough sizes fits, and the power-law fits
    would have too few profiles.
    """
    options = [c for c in TRAIN_FLOPS if c >= 1e15]
    return float(min(
        n * sum(options[start : start + length])
        for length in num_levels for start in range(len(options) - length + 1) for n in sizes
    ))


def grid_design(budget_flops: float, *, span: float = 4.0) -> list[RunConfig]:
    """Build the fixed design: per level, sizes log-spaced around 20 tokens per parameter.

    Sizes span ``N_c / span .. N_c * span`` with ``N_c = sqrt(C / 120)``, mapped to API shapes.
    """
    levels, num_sizes = plan_grid(budget_flops)
    design: list[RunConfig] = []
    for flops in levels:
        center = np.sqrt(flops / 120.0)
        seen = set()
        for n_target in np.geomspace(center / span, center * span, num_sizes):
            d_model, num_layers, num_heads = shape_for_n_params(float(n_target))
            if (d_model, num_layers) in seen:
                continue
            seen.add((d_model, num_layers))
            n_params = float(non_embedding_params(d_model, num_layers))
            design.append(
                RunConfig(
                    d_model=d_model, num_layers=num_layers, num_heads=num_heads, batch_size=128,
                    learning_rate=grid_learning_rate(n_params), train_flops=int(flops),
                )
            )
    return design


def _loss_law(log_c, e, log_k, c):
    return e + np.exp(log_k - c * log_c)


def _fit_once(runs: dict[float, tuple[np.ndarray, np.ndarray]], target_flops: float):
    levels = sorted(runs)
    vertices = np.array([quadratic_vertex(*runs[c])[:2] for c in levels])
    log_c = np.log(levels)
    slope, intercept = np.polyfit(log_c, vertices[:, 0], 1)
    log_n_target = intercept + slope * np.log(target_flops)
    losses = vertices[:, 1]
    loss_target = np.nan
    if len(levels) >= 3:
        try:
            params, _ = curve_fit(
                _loss_law, log_c, losses, p0=(min(losses.min() - 0.5, 1.5), 3.0, 0.1),
                bounds=([0.0, -50.0, 1e-4], [losses.min(), 50.0, 2.0]), maxfev=2000,
            )
            loss_target = float(_loss_law(np.log(target_flops), *params))
        except (RuntimeError, ValueError):
            loss_target = np.nan
    if not np.isfinite(loss_target):
        s, i = np.polyfit(log_c, np.log(losses), 1)
        loss_target = float(np.exp(i + s * np.log(target_flops)))
    return {
        "levels": [float(c) for c in levels],
        "log_n_star": vertices[:, 0].tolist(),
        "loss_star": losses.tolist(),
        "slope": float(slope),
        "intercept": float(intercept),
        "n_opt": float(np.exp(log_n_target)),
        "loss_opt": loss_target,
    }


def fit_isoflop_grid(rng_key, configs, losses, target_flops: float, *, num_bootstrap: int = 200):
    """Fit the grid's runs; return the point fit and bootstrap draws of ``N_opt``, ``L_opt``.

    Returns
    -------
    dict
        ``fit`` (the point estimates per profile and at the target), ``n_opt_draws`` and
        ``loss_draws`` (arrays of shape ``(num_bootstrap,)``).
    """
    by_level: dict[float, list[tuple[float, float]]] = {}
    for cfg, loss in zip(configs, losses, strict=True):
        n = float(non_embedding_params(cfg.d_model, cfg.num_layers))
        by_level.setdefault(float(cfg.train_flops), []).append((np.log(n), float(loss)))
    runs = {c: (np.array([p[0] for p in v]), np.array([p[1] for p in v]))
            for c, v in by_level.items() if len(v) >= 2}
    if len(runs) < 2:
        raise ValueError(f"isoflop fit: expected at least 2 profiles of 2+ runs, got {len(runs)}")
    point = _fit_once(runs, target_flops)
    rng = numpy_generator(rng_key)
    n_draws, loss_draws = [], []
    for _ in range(num_bootstrap):
        sample = {}
        for c, (x, y) in runs.items():
            idx = rng.integers(0, x.size, x.size)
            sample[c] = (x[idx], y[idx])
        one = _fit_once(sample, target_flops)
        n_draws.append(one["n_opt"])
        loss_draws.append(one["loss_opt"])
    return {"fit": point, "n_opt_draws": np.array(n_draws), "loss_draws": np.array(loss_draws)}


def _recommendation(fitted: dict, target_flops: float):
    from bayes_scaling.recommend import Recommendation, candidate_shapes

    d_model, num_layers, n_params = candidate_shapes()
    n_star = fitted["fit"]["n_opt"]
    gap = np.abs(np.log(n_params / n_star))
    close = gap <= gap.min() + np.log(1.01)
    ratio = np.where(close, np.abs(np.log(d_model / num_layers / 64.0)), np.inf)
    best = int(np.argmin(ratio))
    d, layers = int(d_model[best]), int(num_layers[best])
    counts = count_params(d, layers, d // HEAD_DIM)
    return Recommendation(
        target_flops=float(target_flops), d_model=d, num_layers=layers,
        num_heads=d // HEAD_DIM, batch_size=128,
        learning_rate=grid_learning_rate(counts.non_embedding, clip=False),
        learning_rate_source="default", non_embedding_params=counts.non_embedding,
        total_params=counts.total, tokens=target_flops / (6.0 * counts.non_embedding),
        predicted_loss=np.asarray(fitted["loss_draws"], np.float64), shape_rule="isoflop_grid",
    )


def run_isoflop_grid(rng_key, session: Session, backend,
                     config: IsoflopGridConfig) -> StrategyResult:
    """Run the fixed design through the session, fit it, and recommend.

    The posterior of the result is a Bayesian fit of the same runs (for the report), or None
    when ``backend`` is None or ``config.fit_baseline_posterior`` is off.
    """
    key_boot, key_fit = jax.random.split(rng_key)
    for cfg in grid_design(session.budget):
        session.query(cfg, reason="isoflop grid")
    obs = session.observations()
    fitted = session.clock.timed(
        "fit", fit_isoflop_grid, key_boot, [o.config for o in obs], [o.loss for o in obs],
        session.target_flops, num_bootstrap=config.num_bootstrap,
    )
    lo, _, hi = equal_tailed(np.log(fitted["n_opt_draws"]))
    loss_lo, _, loss_hi = equal_tailed(fitted["loss_draws"])
    summary = {
        "flops_used": session.flops_used(),
        "n_runs": len(obs),
        "n_opt_median": float(fitted["fit"]["n_opt"]),
        "n_opt_ci90": [float(np.exp(lo)), float(np.exp(hi))],
        "n_opt_ci90_ln_width": float(hi - lo),
        "loss_median": float(fitted["fit"]["loss_opt"]),
        "loss_ci90": [float(loss_lo), float(loss_hi)],
        "loss_ci90_width": float(loss_hi - loss_lo),
    }
    recommendation = _recommendation(fitted, session.target_flops)
    posterior = None
    if backend is not None and config.fit_baseline_posterior:
        posterior = session.fit(key_fit, backend, final=True)
        session.summarize_fit(posterior, final=True)
    extra = {"isoflop_fit": {**fitted["fit"], **{k: summary[k] for k in (
        "n_opt_ci90", "loss_ci90")}}}
    return StrategyResult(posterior=posterior, recommendation=recommendation, history=[summary],
                          stop_reason="design complete", extra=extra)

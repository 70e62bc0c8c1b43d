"""From a posterior to a concrete configuration to train at the target compute.

The shape is chosen on a grid that is wider than the API's (the target model may be larger):
``d_model`` a multiple of 64 up to 8192 with head dimension 64 (``num_heads = d_model / 64``) and
``num_layers`` 1..128, restricted to aspect ratios ``d_model / num_layers`` in [32, 256], the range
over which Kaplan et al. (2020, fig. 5) found the loss of a fixed-size model within a few percent
of its best. Two rules are offered:

- ``"expected_loss"`` (the default): among shapes inside the posterior 90% interval of
  ``N_opt``, the one with the lowest posterior-mean predicted loss at the target, each at its
  posterior median optimal learning rate and batch size 128 (uses ``posterior.predict_mean``).
  It is the Bayes decision when the utility is the run's loss (minimise its expected value),
  and it lets the model's shape and learning-rate terms pick the aspect ratio; among shapes
  within 1e-4 nats of the best (a law without shape terms), the aspect ratio nearest 90 wins.
- ``"n_opt_median"``: the shape whose non-embedding count is closest (in log) to the posterior
  median of ``N_opt(target)``; among shapes within 1% of that count, the one whose aspect ratio
  is closest to the band's geometric centre (about 90). This needs nothing but
  ``posterior.optimum``.

On simulated default-truth posteriors (experiments/recommend_rules.py, results in
experiments/results/recommend_rules.md) ``expected_loss`` had the lower true regret at 1e19
FLOPs on average and in the worst case, so it is the default. For a plain Chinchilla posterior
(no shape terms) both rules give nearly the same size.

The learning rate is the posterior median of ``posterior.optimal_learning_rate`` clipped to
[1e-5, 1e-2]; where the model has no learning-rate term (NaN), a default from the GPT-3 table
(Brown et al. 2020, table 2.1) interpolated in log-log at the model's size. The batch size is 128
or 256, whichever has the lower posterior-mean loss; 128 if the model does not distinguish them.
Parameter counts of the final choice come from the reference model (``params.count_params``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import jax
import numpy as np

from bayes_scaling.errors import InvalidConfigError
from bayes_scaling.features import features_from_configs
from bayes_scaling.params import (
    ASPECT_RATIO_BAND,
    HEAD_DIM,
    count_params,
    non_embedding_params,
    target_shape_grid,
)
from bayes_scaling.space import RunConfig
from bayes_scaling.summary import equal_tailed

if TYPE_CHECKING:
    from bayes_scaling.posterior import PosteriorQueries

__all__ = [
    "ASPECT_RATIO_BAND",
    "LEARNING_RATE_CLIP",
    "Recommendation",
    "candidate_shapes",
    "default_learning_rate",
    "median_learning_rate",
    "recommend",
]

logger = logging.getLogger(__name__)

LEARNING_RATE_CLIP = (1e-5, 1e-2)
_SHAPE_RULES = ("n_opt_median", "expected_loss")
_TIE_LOSS = 1e-4  # nats: shapes this close in posterior-mean loss count as equally good
# Brown et al. 2020, table 2.1: (parameters, learning rate) of the GPT-3 family.
_GPT3_LR = np.array(
    [
        (125e6, 6.0e-4),
        (350e6, 3.0e-4),
        (760e6, 2.5e-4),
        (1.3e9, 2.0e-4),
        (2.7e9, 1.6e-4),
        (6.7e9, 1.2e-4),
        (13e9, 1.0e-4),
        (175e9, 0.6e-4),
    ]
)


@dataclass(frozen=True, kw_only=True)
class Recommendation:
    """The configuration to train at the target, and its predicted loss.

    Attributes
    ----------
    target_flops : float
        The compute of the recommended run.
    d_model, num_layers, num_heads, batch_size : int
        The shape (head dimension 64) and batch size (128 or 256).
    learning_rate : float
        Posterior median optimal learning rate, or the documented default.
    learning_rate_source : str
        ``"posterior"`` or ``"default"`` (GPT-3 table; the model has no learning-rate term).
    non_embedding_params, total_params : int
        Exact counts of the reference model of this shape.
    tokens : float
        ``target_flops / (6 * non_embedding_params)``.
    predicted_loss : numpy.ndarray
        Posterior predictive draws of this configuration's loss at the target, shape ``(S,)``.
    shape_rule : str
        The rule that chose the shape (``"n_opt_median"`` or ``"expected_loss"``).
    """

    target_flops: float
    d_model: int
    num_layers: int
    num_heads: int
    batch_size: int
    learning_rate: float
    learning_rate_source: str
    non_embedding_params: int
    total_params: int
    tokens: float
    predicted_loss: np.ndarray = field(repr=False)
    shape_rule: str = "expected_loss"

    @property
    def aspect_ratio(self) -> float:
        """``d_model / num_layers``."""
        return self.d_model / self.num_layers

    def config(self) -> RunConfig:
        """Return it as a :class:`RunConfig` (in general outside the API's ranges)."""
        return RunConfig(
            d_model=self.d_model,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            train_flops=int(round(self.target_flops)),
        )


def candidate_shapes(
    aspect_ratio_band: tuple[float, float] = ASPECT_RATIO_BAND,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every searched shape: ``(d_model, num_layers, non_embedding_params)`` arrays of shape (K,).

    ``d_model`` in 64, 128, ..., 8192; ``num_layers`` in 1..128; aspect ratio inside the band.
    Counts use the closed form of ``params.non_embedding_params`` (proved equal to the model).
    """
    low, high = aspect_ratio_band
    d_grid, l_grid = target_shape_grid()
    ratio = d_grid / l_grid
    keep = (ratio >= low) & (ratio <= high)
    d_model, num_layers = d_grid[keep], l_grid[keep]
    return d_model, num_layers, np.asarray(non_embedding_params(d_model, num_layers), np.float64)


def default_learning_rate(n_params: float) -> float:
    """GPT-3's learning rate at ``n_params`` (Brown et al. 2020), log-log interpolated, clamped."""
    log_n = np.log(_GPT3_LR[:, 0])
    log_lr = np.log(_GPT3_LR[:, 1])
    return float(np.exp(np.interp(np.log(n_params), log_n, log_lr)))


def _config(d_model, num_layers, batch_size, learning_rate, flops) -> RunConfig:
    return RunConfig(
        d_model=int(d_model),
        num_layers=int(num_layers),
        num_heads=int(d_model) // HEAD_DIM,
        batch_size=int(batch_size),
        learning_rate=float(learning_rate),
        train_flops=int(round(flops)),
    )


def median_learning_rate(posterior: PosteriorQueries, features) -> np.ndarray | None:
    """Posterior median optimal learning rate per row, clipped; None without an lr term."""
    draws = posterior.optimal_learning_rate(features)
    if not np.isfinite(draws).any():
        return None
    median = np.nanmedian(draws, axis=0)
    if not np.all(np.isfinite(median)):
        return None
    return np.clip(median, *LEARNING_RATE_CLIP)


def _learning_rates(posterior, d_model, num_layers, batch_size, flops) -> tuple[np.ndarray, bool]:
    """Median optimal learning rate per shape (clipped), and whether the posterior gave one."""
    probe = [_config(d, L, batch_size, 1e-3, flops) for d, L in zip(d_model, num_layers,
                                                                    strict=True)]
    median = median_learning_rate(posterior, features_from_configs(probe))
    if median is None:
        n = non_embedding_params(np.asarray(d_model), np.asarray(num_layers))
        fallback = np.array([default_learning_rate(x) for x in np.atleast_1d(n)])
        return fallback, False
    return median, True


def _shape_by_median(n_target: float, d_model, num_layers, n_params, band) -> int:
    log_gap = np.abs(np.log(n_params / n_target))
    close = log_gap <= max(log_gap.min(), 0.0) + np.log(1.01)
    centre = np.sqrt(band[0] * band[1])
    ratio_gap = np.where(close, np.abs(np.log(d_model / num_layers / centre)), np.inf)
    return int(np.argmin(ratio_gap + 1e-9 * log_gap))


def recommend(
    rng_key: jax.Array,
    posterior: PosteriorQueries,
    target_flops: float,
    *,
    shape_rule: str = "expected_loss",
    aspect_ratio_band: tuple[float, float] = ASPECT_RATIO_BAND,
) -> Recommendation:
    """Choose the configuration to train at ``target_flops`` from a posterior.

    Parameters
    ----------
    rng_key : jax.Array
        Key for the posterior predictive draws of the chosen configuration's loss.
    posterior : PosteriorQueries
        A fitted posterior (``bayes_scaling.posterior.Posterior`` or another implementation).
    target_flops : float
        The compute of the run to plan.
    shape_rule : {"expected_loss", "n_opt_median"}
        How the shape is chosen (default ``"expected_loss"``); see the module docstring.
    aspect_ratio_band : (float, float)
        Allowed ``d_model / num_layers``.

    Returns
    -------
    Recommendation

    Raises
    ------
    InvalidConfigError
        If ``target_flops`` is not positive, the rule is unknown, or no shape fits the band.
    """
    if not np.isfinite(target_flops) or target_flops <= 0:
        raise InvalidConfigError(f"target_flops: expected a positive number, got {target_flops!r}")
    if shape_rule not in _SHAPE_RULES:
        raise InvalidConfigError(f"shape_rule: expected one of {_SHAPE_RULES}, got {shape_rule!r}")
    d_model, num_layers, n_params = candidate_shapes(aspect_ratio_band)
    if d_model.size == 0:
        raise InvalidConfigError(f"aspect_ratio_band: no shape fits {aspect_ratio_band}")
    n_opt = np.asarray(posterior.optimum(target_flops).n_params, dtype=np.float64)
    n_median = float(np.median(n_opt))

    if shape_rule == "n_opt_median":
        best = _shape_by_median(n_median, d_model, num_layers, n_params, aspect_ratio_band)
    else:
        low, _, high = equal_tailed(n_opt)
        inside = np.flatnonzero((n_params >= low) & (n_params <= high))
        if inside.size == 0:
            inside = np.array([_shape_by_median(n_median, d_model, num_layers, n_params,
                                                aspect_ratio_band)])
        lrs, _ = _learning_rates(posterior, d_model[inside], num_layers[inside], 128, target_flops)
        configs = [_config(d_model[i], num_layers[i], 128, lr, target_flops)
                   for i, lr in zip(inside, lrs, strict=True)]
        mean_loss = posterior.predict_mean(features_from_configs(configs)).mean(axis=0)
        # near-ties (within _TIE_LOSS nats; e.g. a law with no shape term): aspect ratio ~90
        tied = mean_loss <= mean_loss.min() + _TIE_LOSS
        centre = np.sqrt(aspect_ratio_band[0] * aspect_ratio_band[1])
        ratio_gap = np.abs(np.log(d_model[inside] / num_layers[inside] / centre))
        best = int(inside[int(np.argmin(np.where(tied, ratio_gap, np.inf)))])
    d_best, l_best = int(d_model[best]), int(num_layers[best])

    scored = []
    for batch_size in (128, 256):
        lr, from_posterior = _learning_rates(
            posterior, [d_best], [l_best], batch_size, target_flops
        )
        config = _config(d_best, l_best, batch_size, lr[0], target_flops)
        mean = float(posterior.predict_mean(features_from_configs([config])).mean())
        scored.append((mean, config, from_posterior))
    if scored[1][0] < scored[0][0] - 1e-9 * abs(scored[0][0]):
        _, chosen, from_posterior = scored[1]
    else:
        _, chosen, from_posterior = scored[0]

    counts = count_params(chosen.d_model, chosen.num_layers, chosen.num_heads)
    draws = posterior.sample_predictive(rng_key, features_from_configs([chosen]))
    logger.debug("recommended %s (N=%d) for N_opt median %.3g", chosen, counts.non_embedding,
                 n_median)
    return Recommendation(
        target_flops=float(target_flops),
        d_model=chosen.d_model,
        num_layers=chosen.num_layers,
        num_heads=chosen.num_heads,
        batch_size=chosen.batch_size,
        learning_rate=float(chosen.learning_rate),
        learning_rate_source="posterior" if from_posterior else "default",
        non_embedding_params=int(counts.non_embedding),
        total_params=int(counts.total),
        tokens=float(target_flops) / (6.0 * counts.non_embedding),
        predicted_loss=draws[:, 0],
        shape_rule=shape_rule,
    )

"""From a posterior to a concrete configuration to train at the target compute.

The shape is chosen on a grid that is wider than the API's (the target model may be larger):
``d_model`` a multiple of 128 up to 8192 with head dimension 64 (an even number of heads, see
``params.practical_num_heads``) and ``num_layers`` 1..128, restricted to aspect ratios
``d_model / num_layers`` in [32, 256], the range over which Kaplan et al. (2020, fig. 5) found
the loss of a fixed-size model within a few percent of its best (:func:`candidate_shapes`). Two
shape rules are offered:

- ``"expected_loss"`` (the default): among shapes inside the posterior 90% interval of
  ``N_opt``, the one with the lowest posterior expected loss at the target, each at its
  posterior median optimal learning rate and batch size 128. It is the Bayes decision when the
  utility is the run's loss, and it lets the model's shape and learning-rate terms pick the
  aspect ratio; among shapes within 1e-4 nats of the best (a law without shape terms), the
  aspect ratio nearest 90 wins.
- ``"n_opt_median"``: the shape whose non-embedding count is closest (in log) to the posterior
  median of ``N_opt(target)``; among shapes within 1% of that count, the one whose aspect ratio
  is closest to the band's geometric centre (about 90). This needs nothing but
  ``posterior.optimum``.

**Learning rate and batch size** are then chosen together for the shape, by the same rule: the
pair of lowest posterior expected loss
(:func:`bayes_scaling.learning_rate_choice.settings_for_shape`; that module documents the grid
around the posterior median ``lr*``, the clip, the caps ``learning_rate_max`` and
``learning_rate_min`` and the GPT-3 default where the posterior has no learning-rate term).

``Recommendation.intervals`` holds per-draw values of what the posterior chooses: the optimal
learning rate of the recommended shape and batch (``learning_rate``), and each draw's own optimal
``batch_size``, ``d_model``, ``num_layers``, ``num_heads`` and ``aspect_ratio`` at the target
(from ``posterior.optimum``); the report summarises them as ``<name>_ci50`` / ``<name>_ci90``.
``Recommendation.gap_to_optimum`` says why the predicted loss lies above the optimum's loss
(:func:`bayes_scaling.recommend_caveats.gap_to_optimum`), and
:func:`bayes_scaling.recommend_caveats.outside_explored` which recommended values lie outside
the range the fitted runs explored.

**Generic rows** (only ``n_params``, ``n_tokens``, ``loss``; ``generic=True``): the data say
nothing about shapes or learning rates, so the recommendation is ``N`` = the posterior median
of ``N_opt``, ``D = C / (6 N)`` and the predicted loss there, with no architecture, batch size
or learning rate (those fields are None), and no ``gap_to_optimum``.

On simulated default-truth posteriors (experiments/recommend_rules.py, results in
experiments/results/recommend_rules.md) ``expected_loss`` had the lower true regret at 1e19
FLOPs on average and in the worst case, so it is the default. For a plain Chinchilla posterior
(no shape terms) both rules give nearly the same size. Parameter counts of the final choice come
from the reference model (``params.count_params``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from bayes_scaling.count_family import FAMILY_2025, CountFamily
from bayes_scaling.errors import InvalidConfigError
from bayes_scaling.features import features_from_configs, features_from_generic
from bayes_scaling.learning_rate_choice import (
    LEARNING_RATE_CLIP,
    learning_rate_range,
    settings_for_shape,
    shape_config,
    shape_learning_rates,
)
from bayes_scaling.params import ASPECT_RATIO_BAND, practical_num_heads, target_shape_grid
from bayes_scaling.recommend_caveats import gap_to_optimum
from bayes_scaling.space import RunConfig
from bayes_scaling.summary import equal_tailed

if TYPE_CHECKING:
    from bayes_scaling.posterior import PosteriorQueries

__all__ = ["Recommendation", "candidate_shapes", "recommend"]

logger = logging.getLogger(__name__)

_SHAPE_RULES = ("n_opt_median", "expected_loss")
_TIE_LOSS = 1e-4  # nats: shapes this close in posterior-mean loss count as equally good


@dataclass(frozen=True, kw_only=True)
class Recommendation:
    """The configuration to train at the target, and its predicted loss.

    Attributes
    ----------
    target_flops : float
        The compute of the recommended run.
    d_model, num_layers, num_heads, batch_size : int or None
        The shape (head dimension 64) and batch size (128 or 256); None for generic rows.
    learning_rate : float or None
        The learning rate of lowest posterior expected loss, or the documented default; None
        for generic rows.
    learning_rate_source : str
        ``"posterior"``, ``"posterior, capped at the explored maximum"`` (the expected-loss
        choice lay at or above ``learning_rate_max``), ``"posterior, capped at the explored
        minimum"`` (at or below ``learning_rate_min``), ``"default"`` (GPT-3 table; the model has
        no learning-rate term) or ``"none"`` (generic rows).
    non_embedding_params : int
        Exact count of the reference model of this shape (generic rows: the posterior median
        of ``N_opt`` in the data's convention).
    total_params : int or None
        Exact total count (None for generic rows).
    tokens : float
        ``target_flops / (6 * non_embedding_params)``.
    predicted_loss : numpy.ndarray
        Posterior predictive draws of this configuration's loss at the target, shape ``(S,)``.
    law_loss : numpy.ndarray or None
        The model's mean loss of this configuration under each draw, ``(S,)``: the parameter
        uncertainty alone, without the run noise and the extrapolation discrepancy that
        ``predicted_loss`` adds (None where the recommender does not provide it).
    shape_rule : str
        The rule that chose the shape (``"n_opt_median"``, ``"expected_loss"``, ``"generic"``).
    intervals : mapping of str to numpy.ndarray
        Per-draw values of what the posterior chooses, each ``(S,)`` (module docstring).
    gap_to_optimum : mapping
        Why the predicted loss lies above the optimum's
        (:func:`bayes_scaling.recommend_caveats.gap_to_optimum`): the medians
        ``predicted_loss_median`` and ``loss_opt_median``, their difference ``total`` and its
        terms in nats, ``learning_rate_cap``, ``shape_under_cap``, ``one_configuration`` and
        ``median_vs_mean``; the posterior expected losses they are differences of
        (``expected_loss``); with caps (``capped``) the learning rate of lowest expected loss at
        the recommended shape without them (``free_learning_rate``) and the uncapped choice
        (``uncapped``). Empty for generic recommendations.
    """

    target_flops: float
    d_model: int | None
    num_layers: int | None
    num_heads: int | None
    batch_size: int | None
    learning_rate: float | None
    learning_rate_source: str
    non_embedding_params: int
    total_params: int | None
    tokens: float
    predicted_loss: np.ndarray = field(repr=False)
    shape_rule: str = "expected_loss"
    intervals: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)
    gap_to_optimum: Mapping[str, Any] = field(default_factory=dict, repr=False)
    law_loss: np.ndarray | None = field(default=None, repr=False)

    @property
    def generic(self) -> bool:
        """True when the recommendation has no architecture (generic rows)."""
        return self.d_model is None

    @property
    def aspect_ratio(self) -> float:
        """``d_model / num_layers``."""
        if self.generic:
            raise InvalidConfigError("aspect_ratio: expected a shape, got a generic recommendation")
        return self.d_model / self.num_layers

    def config(self) -> RunConfig:
        """Return it as a :class:`RunConfig` (in general outside the API's ranges)."""
        if self.generic:
            raise InvalidConfigError("config: expected a shape, got a generic recommendation")
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
    *,
    practical: bool = False,
    family: CountFamily = FAMILY_2025,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every searched shape: ``(d_model, num_layers, non_embedding_params)`` arrays of shape (K,).

    ``d_model`` in 64, 128, ..., 8192 (``practical=True``: only widths with an even number of
    64-wide heads, ``params.practical_num_heads``); ``num_layers`` in 1..128; aspect ratio inside
    the band. Counts are ``family``'s closed forms (proved equal to its model); a 2026 family
    keeps the widths its head dimension divides.
    """
    low, high = aspect_ratio_band
    d_grid, l_grid = target_shape_grid()
    ratio = d_grid / l_grid
    keep = (ratio >= low) & (ratio <= high)
    if practical:
        keep &= practical_num_heads(d_grid) > 0
    if family.api == "2026":
        keep &= d_grid % family.head_dim == 0
    d_model, num_layers = d_grid[keep], l_grid[keep]
    return d_model, num_layers, np.asarray(family.counts(d_model, num_layers)[3], np.float64)


def _shape_by_median(n_target: float, d_model, num_layers, n_params, band) -> int:
    log_gap = np.abs(np.log(n_params / n_target))
    close = log_gap <= max(log_gap.min(), 0.0) + np.log(1.01)
    centre = np.sqrt(band[0] * band[1])
    ratio_gap = np.where(close, np.abs(np.log(d_model / num_layers / centre)), np.inf)
    return int(np.argmin(ratio_gap + 1e-9 * log_gap))


def _choice_draws(posterior, chosen: RunConfig, target_flops: float,
                  family: CountFamily = FAMILY_2025) -> dict[str, np.ndarray]:
    """Per-draw values of what the posterior chooses (see ``Recommendation.intervals``)."""
    out: dict[str, np.ndarray] = {}
    lr = posterior.optimal_learning_rate(features_from_configs([chosen], family=family))[:, 0]
    if np.isfinite(lr).all():
        out["learning_rate"] = np.asarray(lr, np.float64)
    optimum = posterior.optimum(target_flops)
    d_model = optimum.d_model
    if d_model is not None:
        layers = np.asarray(optimum.num_layers, np.float64)
        out.update(
            batch_size=np.asarray(optimum.batch_size, np.float64),
            d_model=np.asarray(d_model, np.float64),
            num_layers=layers,
            num_heads=np.asarray(d_model, np.float64) / (64.0 if family.api == "2025"
                                                         else family.head_dim),
            aspect_ratio=np.asarray(d_model, np.float64) / layers,
        )
    return out


def _recommend_generic(rng_key, posterior, target_flops: float) -> Recommendation:
    n_opt = np.asarray(posterior.optimum(target_flops).n_params, dtype=np.float64)
    n = float(np.median(n_opt))
    tokens = float(target_flops) / (6.0 * n)
    features = features_from_generic([n], [tokens])
    draws = posterior.sample_predictive(rng_key, features)
    return Recommendation(
        target_flops=float(target_flops), d_model=None, num_layers=None, num_heads=None,
        batch_size=None, learning_rate=None, learning_rate_source="none",
        non_embedding_params=int(round(n)), total_params=None, tokens=tokens,
        predicted_loss=draws[:, 0], shape_rule="generic",
        law_loss=np.asarray(posterior.predict_mean(features), np.float64)[:, 0],
    )


def recommend(
    rng_key: jax.Array,
    posterior: PosteriorQueries,
    target_flops: float,
    *,
    shape_rule: str = "expected_loss",
    aspect_ratio_band: tuple[float, float] = ASPECT_RATIO_BAND,
    generic: bool = False,
    family: CountFamily = FAMILY_2025,
    learning_rate_max: float | None = None,
    learning_rate_min: float | None = None,
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
    generic : bool
        The posterior was fitted to generic rows (only N, D, loss): recommend N, D and the
        predicted loss only, no architecture or learning rate.
    family : CountFamily
        The model family whose shapes are searched and counted (default the 2025 API's; the
        2026 loop passes a 2026 family at the head dimension and intermediate ratio it chose).
    learning_rate_max : float, optional
        Largest learning rate to recommend (the largest the fitted runs tried; see
        :mod:`bayes_scaling.learning_rate_choice`); None: only the clip ``LEARNING_RATE_CLIP``.
    learning_rate_min : float, optional
        Smallest learning rate to recommend (the smallest the fitted runs tried); None: only
        the clip. Must not exceed ``learning_rate_max``.

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
    lr_range = learning_rate_range(learning_rate_min, learning_rate_max)
    if generic:
        return _recommend_generic(rng_key, posterior, target_flops)
    choice = partial(_choose, posterior, target_flops, shape_rule=shape_rule,
                     aspect_ratio_band=aspect_ratio_band, family=family)
    chosen, from_posterior, chosen_loss = choice(lr_range)
    source = "posterior" if from_posterior else "default"
    if (from_posterior and learning_rate_max is not None
            and chosen.learning_rate >= lr_range[1] * (1 - 1e-9)):
        source = "posterior, capped at the explored maximum"
    elif (from_posterior and learning_rate_min is not None
            and chosen.learning_rate <= lr_range[0] * (1 + 1e-9)):
        source = "posterior, capped at the explored minimum"

    non_embedding, total = family.exact_counts(chosen.d_model, chosen.num_layers)
    features = features_from_configs([chosen], family=family)
    draws = posterior.sample_predictive(rng_key, features)
    logger.debug("recommended %s (N=%d)", chosen, non_embedding)
    capped = from_posterior and lr_range != LEARNING_RATE_CLIP
    return Recommendation(
        target_flops=float(target_flops),
        d_model=chosen.d_model,
        num_layers=chosen.num_layers,
        num_heads=chosen.num_heads,
        batch_size=chosen.batch_size,
        learning_rate=float(chosen.learning_rate),
        learning_rate_source=source,
        non_embedding_params=non_embedding,
        total_params=total,
        tokens=float(target_flops) / (6.0 * non_embedding),
        predicted_loss=draws[:, 0],
        shape_rule=shape_rule,
        intervals=_choice_draws(posterior, chosen, target_flops, family),
        gap_to_optimum=gap_to_optimum(posterior, target_flops, chosen, chosen_loss, draws[:, 0],
                                      choice if capped else None, family),
        law_loss=np.asarray(posterior.predict_mean(features), np.float64)[:, 0],
    )


def _choose(posterior, target_flops: float, lr_range: tuple[float, float], *, shape_rule: str,
            aspect_ratio_band: tuple[float, float], family: CountFamily):
    """The shape, batch size and learning rate of the recommendation (module docstring).

    Returns what :func:`~bayes_scaling.learning_rate_choice.settings_for_shape` returns for the
    chosen shape.
    """
    d_model, num_layers, n_params = candidate_shapes(aspect_ratio_band, practical=True,
                                                     family=family)
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
        lrs, _ = shape_learning_rates(posterior, d_model[inside], num_layers[inside], 128,
                                      target_flops, family, lr_range)
        configs = [shape_config(d_model[i], num_layers[i], 128, lr, target_flops, family)
                   for i, lr in zip(inside, lrs, strict=True)]
        mean_loss = posterior.expected_loss(features_from_configs(configs, family=family))
        # near-ties (within _TIE_LOSS nats; e.g. a law with no shape term): aspect ratio ~90
        tied = mean_loss <= mean_loss.min() + _TIE_LOSS
        centre = np.sqrt(aspect_ratio_band[0] * aspect_ratio_band[1])
        ratio_gap = np.abs(np.log(d_model[inside] / num_layers[inside] / centre))
        best = int(inside[int(np.argmin(np.where(tied, ratio_gap, np.inf)))])
    return settings_for_shape(posterior, int(d_model[best]), int(num_layers[best]), target_flops,
                              family, lr_range)

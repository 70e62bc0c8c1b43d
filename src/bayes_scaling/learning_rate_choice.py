"""The batch size and learning rate to recommend for one shape at the target compute.

Once :func:`bayes_scaling.recommend.recommend` has a shape, :func:`settings_for_shape` chooses
the pair (``batch_size`` in {128, 256}, ``learning_rate`` on a grid of factors
``LEARNING_RATE_FACTORS``, ``e^-1.5 .. e^1.5``, around the posterior median ``lr*`` of that
batch) with the lowest posterior expected loss (:meth:`PosteriorQueries.expected_loss`:
averaged over the draws, the extrapolation discrepancy's expected cost included). Averaging over
draws is what makes an extrapolation the data cannot support cost what its uncertainty costs:
where ``lr*`` at the target is uncertain and the loss is asymmetric in ``ln(lr / lr*)`` (slow
progress below, instability above), the expected loss moves the choice off the median to the
safer side.

The learning rate is clipped to ``LEARNING_RATE_CLIP`` ([1e-5, 1e-2]), and, with
``learning_rate_max`` and ``learning_rate_min`` (``bayes-scaling fit`` passes the largest and the
smallest learning rate its runs tried; :func:`learning_rate_range` checks them), to that range.
Above it, the expected loss is the model's extrapolation of its learning-rate response into a
region no run measured (on the 2025 course API rows every budget's best run is at the API's
maximum, 1e-3, and the posterior's ``lr*`` at 1e19 sits at 2-5 times it, carried by the shape of
the response below 1e-3 alone), while the published fits agree that ``lr*`` falls along the
compute-optimal path (DeepSeek-AI 2024: ``lr* ∝ C^-0.125``; Step Law, Li et al. 2025:
``N^-0.713 D^0.307``, i.e. ``C^-0.2`` at a fixed ratio of tokens to parameters; Porian et al.
2024), so a run larger than the fitted ones does not call for a learning rate above the largest
the fitted ones tried. Below it, the same holds in the other direction: a value under the
smallest learning rate any run tried is carried by the fitted exponents of ``lr*`` alone (on the
2024 course API rows, every run at 1e-4, 5e-4 or 1e-3, the expected-loss choice at 1e19 was
1.35e-5), and the loss of a too-small learning rate is what no run measured either. The
recommendation's source then reads ``"posterior, capped at the explored maximum"`` (or
``minimum``) and the report keeps the posterior's ``lr*`` interval and says how far outside the
explored range its median and 90% interval lie
(:func:`bayes_scaling.recommend_caveats.outside_explored`).

Where the posterior has no learning-rate term (NaN ``lr*``), the learning rate is the GPT-3
table's (Brown et al. 2020, table 2.1) interpolated in log-log at the model's size
(:func:`default_learning_rate`), and the batch size the one with the lower expected loss (128 on
a tie).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bayes_scaling.count_family import FAMILY_2025, CountFamily
from bayes_scaling.errors import InvalidConfigError
from bayes_scaling.features import features_from_configs
from bayes_scaling.space import RunConfig

if TYPE_CHECKING:
    from bayes_scaling.posterior import PosteriorQueries

__all__ = [
    "LEARNING_RATE_CLIP",
    "LEARNING_RATE_FACTORS",
    "default_learning_rate",
    "learning_rate_range",
    "median_learning_rate",
    "settings_for_shape",
    "shape_config",
    "shape_learning_rates",
]

LEARNING_RATE_CLIP = (1e-5, 1e-2)
#: Factors around the posterior median lr* that the learning-rate choice searches.
LEARNING_RATE_FACTORS = np.exp(np.linspace(-1.5, 1.5, 31))
_BATCH_SIZES = (128, 256)
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


def default_learning_rate(n_params: float) -> float:
    """GPT-3's learning rate at ``n_params`` (Brown et al. 2020), log-log interpolated, clamped."""
    log_n = np.log(_GPT3_LR[:, 0])
    log_lr = np.log(_GPT3_LR[:, 1])
    return float(np.exp(np.interp(np.log(n_params), log_n, log_lr)))


def shape_config(d_model, num_layers, batch_size, learning_rate, flops,
                 family: CountFamily = FAMILY_2025) -> RunConfig:
    """The :class:`RunConfig` of a shape at ``flops``, with ``family``'s number of heads."""
    return RunConfig(
        d_model=int(d_model),
        num_layers=int(num_layers),
        num_heads=family.num_heads(d_model),
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


def shape_learning_rates(posterior: PosteriorQueries, d_model, num_layers, batch_size, flops,
                         family: CountFamily = FAMILY_2025,
                         lr_range: tuple[float, float] = LEARNING_RATE_CLIP,
                         ) -> tuple[np.ndarray, bool]:
    """Median optimal lr per shape (clipped to ``lr_range``); whether the posterior gave it.

    Without a learning-rate term in the posterior, :func:`default_learning_rate` of each shape's
    non-embedding count (``family``'s closed form), unclipped.
    """
    probe = [shape_config(d, L, batch_size, 1e-3, flops, family)
             for d, L in zip(d_model, num_layers, strict=True)]
    median = median_learning_rate(posterior, features_from_configs(probe, family=family))
    if median is None:
        n = family.counts(np.asarray(d_model), np.asarray(num_layers))[3]
        fallback = np.array([default_learning_rate(x) for x in np.atleast_1d(n)])
        return fallback, False
    return np.clip(median, *lr_range), True


def settings_for_shape(posterior: PosteriorQueries, d_best: int, l_best: int,
                       target_flops: float, family: CountFamily = FAMILY_2025,
                       lr_range: tuple[float, float] = LEARNING_RATE_CLIP,
                       ) -> tuple[RunConfig, bool, float]:
    """Batch size and learning rate of lowest expected loss for one shape (module docstring).

    Returns the configuration, whether its learning rate came from the posterior, and its
    posterior expected loss.
    """
    configs, order, from_posterior = [], [], True
    for rank, batch_size in enumerate(_BATCH_SIZES):
        lr, from_posterior = shape_learning_rates(posterior, [d_best], [l_best], batch_size,
                                                  target_flops, family)
        factors = LEARNING_RATE_FACTORS if from_posterior else np.ones(1)
        for factor in factors:
            x = float(np.clip(lr[0] * factor, *lr_range))
            configs.append(shape_config(d_best, l_best, batch_size, x, target_flops, family))
            order.append(abs(np.log(factor)) + 10.0 * rank)
    expected = posterior.expected_loss(features_from_configs(configs, family=family))
    # exact ties (a model blind to the batch or the lr): batch 128, then the median lr*
    best = int(np.argmin(expected + 1e-12 * np.asarray(order)))
    return configs[best], from_posterior, float(expected[best])


def learning_rate_range(low: float | None, high: float | None) -> tuple[float, float]:
    """``LEARNING_RATE_CLIP`` narrowed to ``[low, high]`` (either None: that end unchanged).

    Raises
    ------
    InvalidConfigError
        If ``high`` is not above the clip's low end, ``low`` not positive and below its high
        end, or ``low`` exceeds ``high``.
    """
    lr_min, lr_max = LEARNING_RATE_CLIP
    if high is not None:
        if not np.isfinite(high) or high <= LEARNING_RATE_CLIP[0]:
            raise InvalidConfigError(f"learning_rate_max: expected a number above "
                                     f"{LEARNING_RATE_CLIP[0]:g}, got {high!r}")
        lr_max = min(lr_max, float(high))
    if low is not None:
        if not np.isfinite(low) or not 0 < low < LEARNING_RATE_CLIP[1]:
            raise InvalidConfigError(f"learning_rate_min: expected a positive number below "
                                     f"{LEARNING_RATE_CLIP[1]:g}, got {low!r}")
        lr_min = max(lr_min, float(low))
    if lr_min > lr_max:
        raise InvalidConfigError(f"learning_rate_min: expected at most learning_rate_max "
                                 f"({lr_max:g}), got {lr_min:g}")
    return lr_min, lr_max

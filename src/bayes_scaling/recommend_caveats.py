"""What the report says about a recommendation beside the configuration itself.

Two caveats, both about how far the recommendation rests on the model's extrapolation:

**Why the predicted loss lies above the optimum's loss** (:func:`gap_to_optimum`, stored as
``Recommendation.gap_to_optimum``). ``posterior.optimum(target).loss``, the report's
``loss_opt``, is each draw's own minimum: its own best shape and batch on the optimum's grid at
its own ``lr*``, no cap. The recommendation is one configuration for every draw, under the caps
(:mod:`bayes_scaling.learning_rate_choice`). The gap between the two medians is split, in nats,
into differences of posterior expected losses (:meth:`PosteriorQueries.expected_loss`):
``learning_rate_cap``, the recommendation minus its own shape at the batch and learning rate
:func:`~bayes_scaling.learning_rate_choice.settings_for_shape` chooses without the caps;
``shape_under_cap``, that minus the configuration ``recommend`` chooses without the caps (the
caps also move the shape: a larger model has a smaller ``lr*``, so a cap costs it less);
``one_configuration``, that minus the mean of the optimum's loss (``E min <= min E``: the cost of
not knowing each draw's best shape and ``lr*``, less where the recommendation's wider shape grid
reaches what the optimum's does not); and ``median_vs_mean``, the rest (the report quotes
medians). Both cap terms are the model's own extrapolation of its learning-rate response beyond
the runs, which is why the caps are there. Without caps (``run``'s loop) they are zero and
nothing is re-chosen.

**Values outside the explored range** (:func:`outside_explored`): which recommended values lie
outside the range the fitted runs explored, and by what factor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from bayes_scaling.count_family import CountFamily
from bayes_scaling.learning_rate_choice import LEARNING_RATE_CLIP, settings_for_shape
from bayes_scaling.summary import equal_tailed

if TYPE_CHECKING:
    from bayes_scaling.features import RunFeatures
    from bayes_scaling.posterior import PosteriorQueries
    from bayes_scaling.recommend import Recommendation
    from bayes_scaling.space import RunConfig

__all__ = ["gap_to_optimum", "outside_explored"]


def gap_to_optimum(posterior: PosteriorQueries, target_flops: float, chosen: RunConfig,
                   chosen_loss: float, predicted: np.ndarray,
                   uncapped_choice: Callable | None, family: CountFamily) -> dict:
    """Why the predicted loss lies above the optimum's loss: ``Recommendation.gap_to_optimum``.

    Parameters
    ----------
    posterior : PosteriorQueries
        The posterior the recommendation came from.
    target_flops : float
        The target compute.
    chosen : RunConfig
        The recommended configuration.
    chosen_loss : float
        Its posterior expected loss.
    predicted : numpy.ndarray
        Its posterior predictive loss draws, shape ``(S,)``.
    uncapped_choice : callable or None
        ``uncapped_choice(lr_range)`` re-chooses the configuration within ``lr_range`` and
        returns what :func:`~bayes_scaling.learning_rate_choice.settings_for_shape` returns;
        None: the recommendation had no caps, nothing is re-chosen.
    family : CountFamily
        The family the shape is counted in.

    Returns
    -------
    dict
        The keys documented at ``Recommendation.gap_to_optimum``, explained in the module
        docstring.
    """
    optimum_loss = np.asarray(posterior.optimum(target_flops).loss, np.float64)
    at_shape = uncapped = chosen_loss
    out: dict[str, Any] = {"capped": uncapped_choice is not None}
    if uncapped_choice is not None:
        free, _, at_shape = settings_for_shape(posterior, chosen.d_model, chosen.num_layers,
                                               target_flops, family)
        other, _, uncapped = uncapped_choice(LEARNING_RATE_CLIP)
        out["free_learning_rate"] = free.learning_rate
        out["uncapped"] = {"d_model": other.d_model, "num_layers": other.num_layers,
                           "num_heads": other.num_heads, "batch_size": other.batch_size,
                           "learning_rate": other.learning_rate}
    predicted_median, optimum_median = float(np.median(predicted)), float(np.median(optimum_loss))
    optimum_mean = float(np.mean(optimum_loss))
    terms = {"learning_rate_cap": chosen_loss - at_shape, "shape_under_cap": at_shape - uncapped,
             "one_configuration": uncapped - optimum_mean}
    total = predicted_median - optimum_median
    return {"predicted_loss_median": predicted_median, "loss_opt_median": optimum_median,
            "total": total, **terms, "median_vs_mean": total - sum(terms.values()),
            "expected_loss": {"recommended": chosen_loss, "at_free_learning_rate": at_shape,
                              "uncapped": uncapped, "optimum": optimum_mean},
            **out}


def outside_explored(recommendation: Recommendation, explored: RunFeatures) -> list[dict]:
    """Recommended values outside the range the fitted API runs explored.

    Checks ``learning_rate``, ``batch_size``, ``num_heads`` and ``aspect_ratio`` against the
    min-max of the API rows of ``explored``, and the posterior's optimal learning rate of the
    recommended shape (from ``recommendation.intervals``) against the explored learning rates:
    its median (``optimal_learning_rate_median``, either side), the upper end of its 90%
    interval against the largest (``optimal_learning_rate_ci90_high``) and the lower end against
    the smallest (``optimal_learning_rate_ci90_low``). A capped recommendation
    (``learning_rate_max``, ``learning_rate_min``) stays inside, while the posterior may still
    put ``lr*`` beyond anything measured, and the report says so. Returns one dict per value
    outside:
    ``{"name", "value", "explored": [low, high], "side": "above" | "below", "factor"}`` with
    ``factor`` how many times beyond the nearest end (> 1). Empty for generic recommendations
    or without API rows.
    """
    rows = explored.take(explored.is_config)
    if recommendation.generic or len(rows) == 0:
        return []
    values = {
        "learning_rate": (recommendation.learning_rate, rows.learning_rate),
        "batch_size": (recommendation.batch_size, rows.batch_size),
        "num_heads": (recommendation.num_heads, rows.num_heads),
        "aspect_ratio": (recommendation.aspect_ratio, rows.d_model / rows.num_layers),
    }
    flags = []
    for name, (value, seen) in values.items():
        seen = seen[np.isfinite(seen)]
        if value is None or seen.size == 0:
            continue
        low, high = float(np.min(seen)), float(np.max(seen))
        if name == "learning_rate" and "learning_rate" in recommendation.intervals:
            lo90, median, hi90 = equal_tailed(recommendation.intervals["learning_rate"])
            flags += _outside("optimal_learning_rate_median", median, low, high)
            flags += _outside("optimal_learning_rate_ci90_high", hi90, low, high, side="above")
            flags += _outside("optimal_learning_rate_ci90_low", lo90, low, high, side="below")
        flags += _outside(name, value, low, high)
    return flags


def _outside(name: str, value, low: float, high: float, side: str | None = None) -> list[dict]:
    """``[flag]`` if ``value`` lies outside ``[low, high]`` (on ``side`` only, if given), or []."""
    value = float(value)
    if side != "below" and value > high * (1 + 1e-9):
        return [{"name": name, "value": value, "explored": [low, high], "side": "above",
                 "factor": value / high}]
    if side != "above" and value < low * (1 - 1e-9):
        return [{"name": name, "value": value, "explored": [low, high], "side": "below",
                 "factor": low / value}]
    return []

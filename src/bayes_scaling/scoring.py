"""Scores of a recommendation against a simulated truth (DESIGN.md section 6; evaluation only).

Used after a strategy has finished, by ``bayes-scaling run`` on the in-process simulator and by
``experiments/benchmark_strategies.py``; no strategy ever sees these numbers.
"""

from __future__ import annotations

import math

import numpy as np

from bayes_scaling.simulator.evaluation import true_mean_loss, true_optimum
from bayes_scaling.simulator.truth import Truth
from bayes_scaling.summary import equal_tailed

__all__ = ["evaluate_recommendation"]


def evaluate_recommendation(truth: Truth, recommendation, target_flops: float) -> dict:
    """Regret, N error, loss error and 90% coverage of ``recommendation`` under ``truth``.

    Returns
    -------
    dict
        ``true_loss_of_recommended``, ``true_optimum_loss``, ``regret`` (true mean loss of the
        recommended configuration minus the true optimum's, at the target),
        ``true_optimum_non_embedding_params``, ``n_error`` (``|ln(N_rec / N_true_opt)|``),
        ``loss_error`` (``|median predicted loss - true loss|``) and ``ci90_covers_true_loss``.
    """
    optimum = true_optimum(truth, target_flops)
    loss = float(true_mean_loss(truth, recommendation.config(), target_flops))
    predicted = np.asarray(recommendation.predicted_loss, np.float64)
    lo, median, hi = equal_tailed(predicted)
    return {
        "note": "evaluation only: computed from the simulator's truth after the strategy ended",
        "true_loss_of_recommended": loss,
        "true_optimum_loss": float(optimum.loss),
        "regret": loss - float(optimum.loss),
        "true_optimum_non_embedding_params": int(optimum.non_embedding_params),
        "n_error": abs(math.log(recommendation.non_embedding_params
                                / optimum.non_embedding_params)),
        "loss_error": abs(float(median) - loss),
        "ci90_covers_true_loss": bool(lo <= loss <= hi),
    }

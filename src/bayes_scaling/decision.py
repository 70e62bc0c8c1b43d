"""What the recommendation at the target depends on, and what an error in each costs.

The ``decision`` acquisition criterion (:func:`bayes_scaling.acquisition.expected_risk_reduction`)
values a query by how much it lowers the decision risk

    R = 1/2 h_N Var(ln N_opt) + 1/2 h_lr Var(ln lr*) + w_L Var(L_opt)

at the target compute: the first two terms are the expected regret (extra loss of the trained
model) of recommending the posterior's size and learning rate when the truth differs, to second
order (a regret ``1/2 h d^2`` for an error ``d`` of the log), the last is the squared-error risk
of the predicted loss (the width of its interval), weighted by ``loss_weight`` nats of regret per
squared nat. The regret curvatures come from the current posterior:

- ``h_N = alpha beta (L_opt - E)``: the curvature of the Chinchilla loss ``E + A N^-alpha +
  B D^-beta`` along ``ln N`` at fixed compute at its optimum (there ``alpha A N^-alpha = beta B
  D^-beta``, so ``d^2 L / d(ln N)^2 = alpha beta (L - E)``), posterior median;
- ``h_lr``: the second difference of the posterior-mean loss in ``ln lr`` at the target, at the
  posterior's typical optimal shape and learning rate, with a step of the posterior sd of
  ``ln lr*`` (clipped to [0.05, 1]): the loss has a kink at ``lr*`` (linear below, quadratic
  above), and this step makes ``1/2 h_lr Var`` the regret at the scale of the present
  uncertainty; 0 for a posterior without a learning-rate term.

The batch size (two values) and the aspect ratio (flat near its optimum) are not in ``R``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bayes_scaling.params import HEAD_DIM
from bayes_scaling.space import RunConfig

if TYPE_CHECKING:
    from bayes_scaling.posterior import PosteriorQueries

__all__ = ["DecisionConfig", "DecisionRisk", "decision_risk"]

#: Bounds of the ``ln lr`` step of the learning-rate curvature.
LR_STEP_BOUNDS = (0.05, 1.0)


@dataclass(frozen=True, kw_only=True)
class DecisionConfig:
    """Settings of the ``decision`` criterion.

    Parameters
    ----------
    loss_weight : float
        ``w_L``: regret nats per squared nat of the predicted loss's error (0: the loss
        prediction does not count).
    """

    loss_weight: float = 1.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.loss_weight) and self.loss_weight >= 0):
            raise ValueError(f"loss_weight: expected a finite number >= 0, got {self.loss_weight}")


@dataclass(frozen=True)
class DecisionRisk:
    """Draws of the decision's quantities and the risk weight of each.

    Attributes
    ----------
    names : tuple of str
    quantities : numpy.ndarray, shape (S, K)
    weights : numpy.ndarray, shape (K,)
        ``R = sum_k weights_k Var(quantities_k)``.
    """

    names: tuple[str, ...]
    quantities: np.ndarray
    weights: np.ndarray

    def risk(self) -> float:
        """The current ``R`` under the draws."""
        return float(self.weights @ np.var(self.quantities, axis=0, ddof=1))


def decision_risk(posterior: PosteriorQueries, featurize: Callable, target_flops: float,
                  config: DecisionConfig | None = None) -> DecisionRisk:
    """The quantities and weights of ``R`` (module docstring) under ``posterior``."""
    config = config or DecisionConfig()
    optimum = posterior.optimum(target_flops)
    law = posterior.law_params()
    loss = np.asarray(optimum.loss, np.float64)
    h_n = float(np.median(np.asarray(law.alpha) * np.asarray(law.beta)
                          * np.maximum(loss - np.asarray(law.E), 0.0)))
    names = ["ln_n_opt", "loss_opt"]
    columns = [np.log(np.asarray(optimum.n_params, np.float64)), loss]
    weights = [0.5 * h_n, config.loss_weight]
    if optimum.learning_rate is not None:
        ln_lr = np.log(np.asarray(optimum.learning_rate, np.float64))
        names.append("ln_lr_star")
        columns.append(ln_lr)
        weights.append(0.5 * _lr_curvature(posterior, featurize, optimum, ln_lr, target_flops))
    return DecisionRisk(names=tuple(names), quantities=np.column_stack(columns),
                        weights=np.asarray(weights, np.float64))


def _lr_curvature(posterior, featurize, optimum, ln_lr, target_flops) -> float:
    """Mean over draws of the loss's second difference in ``ln lr`` (module docstring)."""
    step = float(np.clip(np.std(ln_lr, ddof=1), *LR_STEP_BOUNDS))
    d_model = int(max(HEAD_DIM, HEAD_DIM * round(np.median(optimum.d_model) / HEAD_DIM)))
    num_layers = int(max(1, round(np.median(optimum.num_layers))))
    batch_size = 256 if np.mean(np.asarray(optimum.batch_size) == 256) > 0.5 else 128
    centre = float(np.median(ln_lr))
    configs = [
        RunConfig(d_model=d_model, num_layers=num_layers, num_heads=d_model // HEAD_DIM,
                  batch_size=batch_size, learning_rate=float(np.exp(centre + k * step)),
                  train_flops=int(target_flops))
        for k in (-1, 0, 1)
    ]
    mean = np.asarray(posterior.predict_mean(featurize(configs)), np.float64)
    second = (mean[:, 0] - 2.0 * mean[:, 1] + mean[:, 2]) / step**2
    return float(max(np.mean(second), 0.0))

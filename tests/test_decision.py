"""The decision risk's quantities and regret weights."""

from dataclasses import dataclass

import numpy as np
import pytest

from bayes_scaling.decision import DecisionConfig, decision_risk
from bayes_scaling.features import features_from_configs
from bayes_scaling.law import LawParams, optimal_allocation, predict_loss
from fake_posterior import FakePosterior


@dataclass
class ApiOptimum:
    n_params: np.ndarray
    n_tokens: np.ndarray
    loss: np.ndarray
    d_model: np.ndarray
    num_layers: np.ndarray
    batch_size: np.ndarray
    learning_rate: np.ndarray


class LearningRatePosterior(FakePosterior):
    """The fake with an lr penalty ``c ln(lr / lr*)^2`` and an optimum that names its shape."""

    def optimum(self, flops):
        base = super().optimum(flops)
        s = len(base.n_params)
        d, n_layers = np.full(s, 2048.0), np.full(s, 24.0)
        n = np.full(s, 12 * 24 * 2048.0**2)
        lr = self.lr0 * (n / 1e8) ** -0.33 * np.exp(0.2 * np.random.default_rng(5).normal(size=s))
        return ApiOptimum(base.n_params, base.n_tokens, base.loss, d, n_layers,
                          np.full(s, 128.0), lr)


def test_size_weight_is_half_the_chinchilla_curvature_at_the_optimum():
    posterior = FakePosterior(n_draws=400, spread=0.0)  # every draw the same law
    risk = decision_risk(posterior, features_from_configs, 1e19)
    assert risk.names == ("ln_n_opt", "loss_opt")
    law = LawParams(**{k: float(v[0]) for k, v in posterior.law_params()._asdict().items()})
    n_opt, _ = optimal_allocation(law, 1e19)
    h = 1e-3
    loss = [float(predict_loss(law, n_opt * np.exp(k * h), 1e19 / (6 * n_opt * np.exp(k * h))))
            for k in (-1, 0, 1)]
    curvature = (loss[0] - 2 * loss[1] + loss[2]) / h**2
    assert risk.weights[0] == pytest.approx(0.5 * curvature, rel=1e-3)
    assert risk.weights[1] == 1.0
    assert risk.risk() == pytest.approx(0.0, abs=1e-12)  # no spread, no risk


def test_learning_rate_weight_is_half_the_loss_curvature_in_log_lr():
    posterior = LearningRatePosterior(n_draws=300, spread=0.01, lr0=3e-4, lr_curvature=0.07)
    risk = decision_risk(posterior, features_from_configs, 1e19,
                         DecisionConfig(loss_weight=0.5))
    assert risk.names == ("ln_n_opt", "loss_opt", "ln_lr_star")
    # The penalty is exactly quadratic: its second difference is 2 c whatever the step.
    assert risk.weights[2] == pytest.approx(0.07, rel=1e-6)
    assert risk.weights[1] == 0.5
    assert risk.quantities.shape == (300, 3)
    expected = risk.weights @ np.var(risk.quantities, axis=0, ddof=1)
    assert risk.risk() == pytest.approx(expected)


def test_config_rejects_a_negative_weight():
    with pytest.raises(ValueError, match="loss_weight"):
        DecisionConfig(loss_weight=-1.0)

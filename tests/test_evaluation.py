import dataclasses
import time

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from bayes_scaling.errors import InvalidConfigError
from bayes_scaling.params import count_params
from bayes_scaling.simulator.evaluation import TrueOptimum, true_mean_loss, true_optimum
from bayes_scaling.simulator.truth import Truth, mean_loss, optimal_learning_rate
from bayes_scaling.space import RunConfig

TRUTH = Truth()


def test_true_mean_loss_accepts_configs_mappings_and_objects_beyond_api_ranges():
    config = RunConfig(d_model=512, num_layers=8, num_heads=8, batch_size=128,
                       learning_rate=5e-4, train_flops=10**17)
    expected = float(mean_loss(TRUTH, 512, 8, 8, 128, 5e-4, 3e18))
    assert true_mean_loss(TRUTH, config, 3e18) == pytest.approx(expected, rel=1e-14)
    assert true_mean_loss(TRUTH, config.to_query(), 3e18) == pytest.approx(expected, rel=1e-14)

    @dataclasses.dataclass
    class Recommended:
        d_model: int = 4096
        num_layers: int = 64
        num_heads: int = 64
        batch_size: int = 256
        learning_rate: float = 2e-4

    big = true_mean_loss(TRUTH, Recommended(), 1e22)
    assert isinstance(big, float) and np.isfinite(big)
    assert big == pytest.approx(float(mean_loss(TRUTH, 4096, 64, 64, 256, 2e-4, 1e22)))
    curve = true_mean_loss(TRUTH, config, np.array([1e17, 1e18, 1e19]))
    assert curve.shape == (3,) and np.all(np.diff(curve) < 0)


def test_true_mean_loss_names_a_missing_field():
    with pytest.raises(InvalidConfigError, match="missing learning_rate"):
        true_mean_loss(TRUTH, {"d_model": 64, "num_layers": 2, "num_heads": 2,
                               "batch_size": 128}, 1e17)
    with pytest.raises(InvalidConfigError, match="expected an object with d_model"):
        true_mean_loss(TRUTH, 3, 1e17)


@pytest.mark.parametrize(
    "truth",
    [TRUTH, Truth(b_eta=0.1, chi=0.2, p=0.5, omega=0.3, c_head=0.02)],
)
@pytest.mark.parametrize(
    "shape",
    [(64, 2, 2, 128, 1e15), (512, 8, 8, 256, 1e17), (1024, 24, 16, 128, 1e18),
     (1536, 16, 24, 128, 1e19), (256, 40, 4, 256, 1e16)],
)
def test_eta_star_is_the_optimal_learning_rate(truth, shape):
    d, layers, heads, bs, flops = shape
    eta = float(optimal_learning_rate(truth, d, layers, flops))

    def loss_of_log_lr(log_lr):
        return float(mean_loss(truth, d, layers, heads, bs, np.exp(log_lr), flops))

    result = minimize_scalar(loss_of_log_lr, bounds=(np.log(eta) - 4, np.log(eta) + 4),
                             method="bounded", options={"xatol": 1e-7})
    assert result.x == pytest.approx(np.log(eta), abs=1e-3)
    grid = eta * np.exp(np.linspace(-5, 5, 201))
    losses = np.asarray(mean_loss(truth, d, layers, heads, bs, grid, flops))
    assert losses.min() >= loss_of_log_lr(np.log(eta)) - 1e-12


@pytest.mark.parametrize("flops, expected", [(1e17, 4.0), (1e18, 3.45), (1e19, 3.0)])
def test_default_truth_optimum_matches_design_sanity_values(flops, expected):
    optimum = true_optimum(TRUTH, flops)
    assert optimum.loss == pytest.approx(expected, abs=0.03)


def test_true_optimum_is_consistent_and_fast():
    true_optimum(TRUTH, 1e18)  # warm up JAX
    start = time.perf_counter()
    optimum = true_optimum(TRUTH, 1e19)
    assert time.perf_counter() - start < 0.5
    assert isinstance(optimum, TrueOptimum)
    assert optimum.num_heads * 64 == optimum.d_model
    assert optimum.batch_size in (128, 256)
    assert optimum.learning_rate == pytest.approx(
        float(optimal_learning_rate(TRUTH, optimum.d_model, optimum.num_layers, 1e19)))
    assert optimum.loss == pytest.approx(true_mean_loss(TRUTH, optimum, 1e19), rel=1e-14)
    counts = count_params(optimum.d_model, optimum.num_layers, optimum.num_heads)
    assert optimum.non_embedding_params == counts.non_embedding
    assert optimum.tokens == pytest.approx(1e19 / (6 * counts.non_embedding))
    assert optimum.flops == 1e19


def test_true_optimum_beats_every_grid_point_by_brute_force():
    flops = 3e18
    optimum = true_optimum(TRUTH, flops)
    best = np.inf
    for d in range(64, 4097, 64):
        layers = np.arange(1, 97)
        for bs in (128, 256):
            eta = optimal_learning_rate(TRUTH, d, layers, flops)
            losses = np.asarray(mean_loss(TRUTH, d, layers, d // 64, bs, eta, flops))
            best = min(best, float(losses.min()))
    assert optimum.loss == pytest.approx(best, rel=1e-14)
    # And no learning rate off eta* does better at the optimum's shape.
    for factor in (0.5, 0.8, 1.25, 2.0):
        other = dataclasses.replace(optimum, learning_rate=optimum.learning_rate * factor)
        assert true_mean_loss(TRUTH, other, flops) > optimum.loss


def test_optimum_scales_sensibly_and_stays_inside_the_grid():
    optima = [true_optimum(TRUTH, c) for c in (1e16, 1e17, 1e18, 1e19, 1e20)]
    losses = [o.loss for o in optima]
    sizes = [o.non_embedding_params for o in optima]
    assert np.all(np.diff(losses) < 0)
    assert np.all(np.diff(sizes) > 0)
    for o in optima:
        assert 64 < o.d_model < 4096 and o.num_layers < 96


def test_true_optimum_rejects_bad_flops():
    with pytest.raises(InvalidConfigError, match="flops: expected a positive number"):
        true_optimum(TRUTH, 0)

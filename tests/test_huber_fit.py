"""Approach 3 (Huber on log loss, multi-start L-BFGS, bootstrap): recovery and plumbing."""

import jax
import numpy as np
import pytest
from scipy.optimize import approx_fprime

from bayes_scaling.errors import DataFormatError
from bayes_scaling.huber_fit import bootstrap_huber, huber_objective
from bayes_scaling.law import LawParams, optimal_allocation, predict_loss

TRUE = LawParams(E=1.8, A=480.0, B=2100.0, alpha=0.34, beta=0.37)


def _grid_data(noise=0.01, seed=0):
    n = np.repeat(np.geomspace(5e7, 5e9, 8), 6)
    d = np.tile(np.geomspace(1e9, 2e11, 6), 8)
    loss = np.asarray(predict_loss(TRUE, n, d))
    eps = np.random.default_rng(seed).normal(0.0, noise, n.size)
    return n, d, loss * np.exp(eps)


def test_gradient_matches_finite_differences():
    n, d, loss = _grid_data()
    args = (np.log(n), np.log(d), np.log(loss), 0.05)  # a wide delta: both Huber branches
    x = np.array([6.0, 7.5, 0.5, 0.3, 0.35])
    value, grad = huber_objective(x, *args)
    numeric = approx_fprime(x, lambda p: huber_objective(p, *args)[0], 1e-7)
    assert value > 0
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_recovers_an_exact_law():
    fit = bootstrap_huber(jax.random.key(0), *_grid_data(noise=0.0), num_boot=0)
    a, b, e, alpha, beta = fit.params
    np.testing.assert_allclose([np.exp(e), np.exp(a), np.exp(b), alpha, beta], list(TRUE),
                               rtol=1e-3)


def test_bootstrap_intervals_cover_the_law_and_give_its_optimum():
    n, d, loss = _grid_data(noise=0.003)
    fit = bootstrap_huber(jax.random.key(0), n, d, loss, num_boot=12)
    assert fit.boot.shape == (12, 5)
    for j, value in ((3, TRUE.alpha), (4, TRUE.beta), (2, np.log(TRUE.E))):
        assert fit.boot[:, j].min() - 0.03 <= value <= fit.boot[:, j].max() + 0.03
    n_draws, loss_draws = fit.optimum(1e21)
    n_true, d_true = optimal_allocation(TRUE, 1e21)
    assert np.median(n_draws) == pytest.approx(float(n_true), rel=0.5)
    assert np.median(loss_draws) == pytest.approx(float(predict_loss(TRUE, n_true, d_true)),
                                                  rel=0.02)


def test_predictive_carries_the_scatter():
    n, d, loss = _grid_data(noise=0.03)
    fit = bootstrap_huber(jax.random.key(1), n, d, loss, num_boot=8)
    draws = fit.sample_predictive(jax.random.key(2), n[:5], d[:5])
    assert draws.shape == (8, 5)
    spread = np.std(np.log(draws), axis=0)
    assert np.all(spread > 0.01)  # residuals of sd 0.03 in log, not the bootstrap alone
    np.testing.assert_allclose(fit.predict(n[:5], d[:5]), np.median(draws, axis=0), rtol=0.05)


def test_bad_input_is_one_line_error():
    with pytest.raises(DataFormatError, match="expected equal lengths"):
        bootstrap_huber(jax.random.key(0), [1e8] * 3, [1e9] * 3, [3.0] * 3)
    with pytest.raises(DataFormatError, match="positive finite"):
        bootstrap_huber(jax.random.key(0), [1e8] * 6, [1e9] * 6, [3.0, -1, 3, 3, 3, 3])
    with pytest.raises(DataFormatError, match="num_boot"):
        bootstrap_huber(jax.random.key(0), *_grid_data(), num_boot=-1)

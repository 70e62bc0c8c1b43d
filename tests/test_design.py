"""The cost-constrained c-optimal design, its linearisation and the report's yardstick."""

import itertools

import numpy as np
import pytest

from bayes_scaling.design import (
    c_optimal_design,
    design_sd,
    design_yardstick,
    linearise,
    plan_support,
)
from bayes_scaling.features import features_from_configs
from bayes_scaling.space import RunConfig

# Straight-line regression f(x) = theta_0 + theta_1 x, observed at x in [-1, 1] with unit noise;
# the quantity is its value at x0 = 2 (an extrapolation, like N_opt at the target).
POINTS = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
X = np.column_stack([np.ones_like(POINTS), POINTS])
C = np.array([1.0, 2.0])


def _two_point_variance(i, j, costs, budget):
    """Exact optimal variance of the two-point design on points i, j (Lagrange weights)."""
    xi, xj, x0 = POINTS[i], POINTS[j], C[1]
    li, lj = (x0 - xj) / (xi - xj), (x0 - xi) / (xj - xi)
    # n_k runs at each: var = l_i^2 / n_i + l_j^2 / n_j under n_i c_i + n_j c_j = budget.
    return (abs(li) * np.sqrt(costs[i]) + abs(lj) * np.sqrt(costs[j])) ** 2 / budget


def test_equal_costs_give_the_classic_extrapolation_design():
    # Known optimum: mass 3/4 at x = 1 and 1/4 at x = -1, variance x0^2 / n = 4 / 10.
    design = c_optimal_design(C, X, np.ones(5), np.ones(5), budget=10.0)
    assert design.sd == pytest.approx(np.sqrt(0.4), rel=1e-6)
    np.testing.assert_allclose(design.budget_fraction, [0.25, 0, 0, 0, 0.75], atol=1e-6)
    np.testing.assert_allclose(design.runs.sum(), 10.0, rtol=1e-6)
    assert set(design.support) == {0, 4}
    assert design_sd(C, X, np.ones(5), design.runs) == pytest.approx(design.sd, rel=1e-6)


def test_unequal_costs_match_brute_force_over_two_point_designs():
    costs = np.array([1.0, 1.0, 2.0, 1.5, 6.0])
    budget = 30.0
    design = c_optimal_design(C, X, np.ones(5), costs, budget)
    brute = min(_two_point_variance(i, j, costs, budget)
                for i, j in itertools.combinations(range(5), 2))
    assert design.sd**2 == pytest.approx(brute, rel=1e-6)
    # The dear x = 1 point is dropped for the cheaper x = 0.5 one.
    assert 4 not in design.support and 3 in design.support
    assert (design.runs * costs).sum() == pytest.approx(budget, rel=1e-6)
    assert design_sd(C, X, np.ones(5), design.runs) == pytest.approx(design.sd, rel=1e-6)


def test_any_other_design_of_the_same_budget_is_worse():
    rng = np.random.default_rng(0)
    costs = np.array([1.0, 1.0, 2.0, 1.5, 6.0])
    design = c_optimal_design(C, X, np.ones(5), costs, 30.0)
    for _ in range(200):
        fraction = rng.dirichlet(np.ones(5))
        assert design_sd(C, X, np.ones(5), fraction * 30.0 / costs) >= design.sd * (1 - 1e-9)


def test_a_design_that_cannot_identify_the_quantity():
    # Only x = 0 observed: the slope is unknown, the extrapolation not identified.
    assert design_sd(C, X, np.ones(5), [0, 0, 3.0, 0, 0]) == np.inf
    design = c_optimal_design(C, X[2:3], np.ones(1), np.ones(1), 10.0)
    assert design.sd == np.inf


def test_linearisation_recovers_the_linear_gaussian_model():
    rng = np.random.default_rng(1)
    root = rng.normal(size=(2, 2))
    sigma = root @ root.T + 0.3 * np.eye(2)
    theta = rng.multivariate_normal([0.5, -1.0], sigma, size=100_000)
    # Extra columns: a constant site and a duplicate direction (both dropped by the whitening).
    draws = np.column_stack([theta, np.full(len(theta), 3.0), 2.0 * theta[:, 0]])
    lin = linearise(draws, theta @ C, theta @ X.T)
    runs = np.array([2.0, 0.0, 1.0, 0.0, 3.0])
    noise = np.full(5, 0.3)
    exact = np.sqrt(C @ np.linalg.solve(X.T @ np.diag(runs / noise) @ X, C))
    assert design_sd(lin.c, lin.x, noise, runs) == pytest.approx(exact, rel=0.02)
    design = c_optimal_design(lin.c, lin.x, noise, np.ones(5), 10.0)
    assert design.sd == pytest.approx(np.sqrt(4 * 0.3 / 10), rel=0.02)


def test_plan_support_prices_runs_at_the_floor():
    rng = np.random.default_rng(2)
    theta = rng.normal(size=(20_000, 2))
    g = theta @ C
    mean = theta @ X.T
    flops = np.array([1.0, 1.0, 1.0, 1.0, 100.0])
    # Cheap points dominate when costs are real ...
    allowed, split = plan_support(theta, g, mean, np.ones(5), flops, remaining_flops=1e3,
                                  floor=0.0)
    assert not allowed[4] and allowed[0]
    # ... but priced at a floor of 100 every run costs the same: the extrapolation design on
    # x = -1 and 1, with the split of the Bayesian optimum (prior: the draws' N(0, I)).
    allowed, split = plan_support(theta, g, mean, np.ones(5), flops, remaining_flops=1e3,
                                  floor=100.0)
    assert allowed[4] and allowed[0] and allowed.sum() == 2
    grid = np.linspace(0, 1, 1001)
    best = grid[np.argmin([_bayes_variance([1 - p, 0, 0, 0, p], np.full(5, 100.0), 1e3,
                                           np.eye(2)) for p in grid])]
    assert split[100] == pytest.approx(best, abs=0.02)


def test_yardstick_of_a_fake_posterior(tmp_path):
    from fake_posterior import FakePosterior

    posterior = FakePosterior(n_draws=2000, spread=0.05)
    shapes = [(256, 4), (384, 6), (512, 8), (768, 12), (1024, 16)]
    candidates = [RunConfig(d_model=d, num_layers=n, num_heads=d // 64, batch_size=128,
                            learning_rate=3e-4, train_flops=int(f))
                  for d, n in shapes for f in (1e16, 1e17, 1e18)]
    bought = candidates[:9]  # the three smaller shapes at every compute
    out = design_yardstick(posterior, features_from_configs, bought, candidates,
                           target_flops=1e19, budget_flops=2e18, planned_queries=10)
    assert 0 < out["oracle_sd_ln_n_opt"] < out["achieved_sd_ln_n_opt"] < np.inf
    assert out["design_efficiency"] == pytest.approx(
        out["oracle_sd_ln_n_opt"] / out["achieved_sd_ln_n_opt"])
    assert 0 < out["design_efficiency"] < 1
    assert sum(out["oracle_design"]["budget_fraction_by_flops"].values()) == pytest.approx(
        1.0, abs=0.01)
    assert out["oracle_design"]["floor_flops"] == pytest.approx(2e17)
    # A lower floor lets the bound buy more of the cheap runs: a smaller (looser) bound, and
    # the same achieved sd.
    cheap = design_yardstick(posterior, features_from_configs, bought, candidates,
                             target_flops=1e19, budget_flops=2e18, planned_queries=1000)
    assert cheap["oracle_sd_ln_n_opt"] < 0.95 * out["oracle_sd_ln_n_opt"]
    assert cheap["achieved_sd_ln_n_opt"] == pytest.approx(out["achieved_sd_ln_n_opt"])


def _bayes_variance(fraction, costs, budget, prior, noise=1.0):
    runs = np.asarray(fraction) * budget / costs
    return C @ np.linalg.solve(prior + X.T @ np.diag(runs / noise) @ X, C)


def test_bayesian_design_matches_brute_force_over_two_point_designs():
    costs = np.array([1.0, 1.0, 2.0, 1.5, 6.0])
    budget = 4.0
    prior = np.array([[2.0, 0.3], [0.3, 0.5]])
    design = c_optimal_design(C, X, np.ones(5), costs, budget, prior_information=prior)
    grid = np.linspace(0, 1, 2001)
    brute = min(
        _bayes_variance(np.where(np.arange(5) == i, g, 0) + np.where(np.arange(5) == j, 1 - g, 0),
                        costs, budget, prior)
        for i, j in itertools.combinations(range(5), 2) for g in grid)
    assert design.sd**2 == pytest.approx(brute, rel=1e-3)
    assert design.sd**2 <= brute * (1 + 1e-4)
    assert design_sd(C, X, np.ones(5), design.runs, prior_information=prior) == pytest.approx(
        design.sd, rel=1e-6)
    # The prior's information makes the optimum better than the data-alone one.
    alone = c_optimal_design(C, X, np.ones(5), costs, budget)
    assert design.sd < alone.sd
    rng = np.random.default_rng(3)
    for _ in range(200):
        fraction = rng.dirichlet(np.ones(5))
        assert _bayes_variance(fraction, costs, budget, prior) >= design.sd**2 * (1 - 1e-4)


def test_bayesian_design_with_a_singular_prior():
    # The prior knows only the intercept: the slope must come from the data.
    prior = np.array([[4.0, 0.0], [0.0, 0.0]])
    design = c_optimal_design(C, X, np.ones(5), np.ones(5), 10.0, prior_information=prior)
    assert np.isfinite(design.sd)
    rng = np.random.default_rng(4)
    for _ in range(200):
        fraction = rng.dirichlet(np.ones(5))
        assert _bayes_variance(fraction, np.ones(5), 10.0, prior) >= design.sd**2 * (1 - 1e-4)

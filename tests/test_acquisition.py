import jax
import numpy as np
import pytest

from bayes_scaling.acquisition import (
    AcquisitionConfig,
    expected_risk_reduction,
    expected_risk_reduction_mc,
    expected_variance_reduction,
    expected_variance_reduction_mc,
    pacing_floor,
    score_candidates,
    select_batch,
)


def _linear_gaussian(num_draws, seed=0):
    """theta ~ N(mu, Sigma); f_m = X_m . theta; g = c . theta: every moment is known exactly."""
    rng = np.random.default_rng(seed)
    dim, num_candidates = 3, 6
    root = rng.normal(size=(dim, dim))
    sigma = root @ root.T + 0.5 * np.eye(dim)
    mu = rng.normal(size=dim)
    design = rng.normal(size=(num_candidates, dim))
    c = rng.normal(size=dim)
    noise = np.linspace(0.3, 1.5, num_candidates)
    theta = rng.multivariate_normal(mu, sigma, size=num_draws)
    g = theta @ c
    f = theta @ design.T
    sd = np.broadcast_to(noise, f.shape)
    return dict(sigma=sigma, design=design, c=c, noise=noise, g=g, f=f, sd=sd, theta=theta)


def _exact_posterior_var(sigma, design, c, noise, picks):
    """Var(g | y_picks) for the conjugate model, by the closed form."""
    x = design[picks]
    s = x @ sigma @ x.T + np.diag(noise[picks] ** 2)
    cov = x @ sigma @ c
    return float(c @ sigma @ c - cov @ np.linalg.solve(s, cov))


def test_linear_reduction_matches_conjugate_closed_form():
    case = _linear_gaussian(200_000)
    got = np.asarray(expected_variance_reduction(case["g"], case["f"], case["sd"]))
    prior_var = case["c"] @ case["sigma"] @ case["c"]
    exact = np.array(
        [prior_var - _exact_posterior_var(case["sigma"], case["design"], case["c"], case["noise"],
                                          [m]) for m in range(6)]
    )
    np.testing.assert_allclose(got, exact, rtol=0.03, atol=0.01 * prior_var)


def test_nested_monte_carlo_agrees_with_closed_form():
    case = _linear_gaussian(4000, seed=1)
    mc = np.asarray(
        expected_variance_reduction_mc(
            jax.random.PRNGKey(0), case["g"], case["f"], case["sd"], num_outcomes=800
        )
    )
    prior_var = case["c"] @ case["sigma"] @ case["c"]
    exact = np.array(
        [prior_var - _exact_posterior_var(case["sigma"], case["design"], case["c"], case["noise"],
                                          [m]) for m in range(6)]
    )
    np.testing.assert_allclose(mc, exact, atol=0.08 * prior_var)


def test_batch_selection_conditions_on_earlier_picks_exactly():
    case = _linear_gaussian(200_000, seed=2)
    costs = np.ones(6)
    picks, _, reductions, _ = select_batch(
        case["g"], case["f"], case["sd"], costs, remaining_flops=10.0, batch_size=3,
        config=AcquisitionConfig(cost_floor=0.0, min_relative_reduction=0.0),
    )
    assert len(picks) == 3 and len(set(picks)) == 3
    prior_var = case["c"] @ case["sigma"] @ case["c"]
    after = prior_var - np.cumsum(reductions)
    for k in range(3):
        exact = _exact_posterior_var(
            case["sigma"], case["design"], case["c"], case["noise"], picks[: k + 1]
        )
        assert after[k] == pytest.approx(exact, rel=0.03, abs=0.01 * prior_var)
    # The first pick is the best single query under unit costs.
    single = np.asarray(expected_variance_reduction(case["g"], case["f"], case["sd"]))
    assert picks[0] == int(np.argmax(single))


def test_scores_exclude_repeats_unaffordable_and_uninformative():
    reduction = np.array([1.0, 1.0, 1.0, 1e-6, 0.5])
    costs = np.array([0.0, 5e17, 2e18, 1e13, 1e13])
    score = score_candidates(
        reduction, costs, g_variance=1.0, remaining_flops=1e18,
        config=AcquisitionConfig(cost_floor=1e16, min_relative_reduction=1e-3),
    )
    assert score[0] == -np.inf  # a repeat already paid
    assert score[2] == -np.inf  # over the remaining budget
    assert score[3] == 0.0  # too little information
    # The cost floor: a 1e13 run is scored as if it cost 1e16, not 1e5 times cheaper.
    assert score[4] == pytest.approx(0.5 / 1e16)
    assert score[1] == pytest.approx(1.0 / 5e17)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="cost_floor"):
        AcquisitionConfig(cost_floor=-1.0)
    with pytest.raises(ValueError, match="min_relative_reduction"):
        AcquisitionConfig(min_relative_reduction=1.5)


def test_pacing_floor_prices_cheap_runs_early_and_buys_the_best_late():
    # Candidate costs and reductions: information grows with compute, slower than cost.
    costs = np.array([1e13, 1e15, 3e16, 3e17, 1e18])
    reduction = np.array([0.001, 0.01, 0.05, 0.2, 0.5])
    # Early (40 planned queries left, 2e18 to spend): cheap runs are priced at the 5e16 floor,
    # so the 3e16 run beats the 1e13 and 1e15 ones and is the best value.
    floor = pacing_floor(2e18, 40)
    assert floor == pytest.approx(5e16)
    early = score_candidates(reduction, costs, g_variance=1.0, remaining_flops=2e18,
                             cost_floor=floor)
    assert early[0] == pytest.approx(0.001 / 5e16)
    assert int(np.argmax(early)) == 2
    # Last planned query: every affordable query costs the floor, the most informative wins.
    late = score_candidates(reduction, costs, g_variance=1.0, remaining_flops=1.5e18,
                            cost_floor=pacing_floor(1.5e18, 1))
    assert int(np.argmax(late)) == 4
    # Past the plan the floor stays the whole remaining budget.
    assert pacing_floor(7e17, -3) == pytest.approx(7e17)


def test_batch_floor_rises_as_planned_queries_run_out():
    rng = np.random.default_rng(0)
    g = rng.normal(size=500)
    f = g[:, None] * np.array([0.01, 0.02, 0.1, 0.3, 0.6])[None, :] + 0.01 * rng.normal(
        size=(500, 5))
    sd = np.full(f.shape, 0.05)
    costs = np.array([1e13, 1e15, 3e16, 3e17, 1e18])
    picks, _, _, floors = select_batch(g, f, sd, costs, remaining_flops=2e18, batch_size=3,
                                       planned_queries_left=3)
    assert floors[0] == pytest.approx(2e18 / 3)
    # Each later floor is the remaining budget over the remaining planned queries.
    spent = np.cumsum(costs[picks])
    for k in (1, 2):
        assert floors[k] == pytest.approx((2e18 - spent[k - 1]) / (3 - k))
    assert 4 in picks  # the 1e18 run near the frontier is bought when the plan runs out


def _exact_risk(case, c2, weights, picks):
    """sum_k w_k Var(q_k | y_picks) for q = (c . theta, c2 . theta) in the conjugate model."""
    total = 0.0
    for w, c in zip(weights, (case["c"], c2), strict=True):
        total += w * _exact_posterior_var(case["sigma"], case["design"], c, case["noise"], picks)
    return total


def test_risk_reduction_matches_closed_form_and_brute_force():
    case = _linear_gaussian(200_000, seed=3)
    c2 = np.array([0.3, -1.0, 0.5])
    q = np.column_stack([case["g"], case["theta"] @ c2])
    weights = np.array([0.7, 2.0])
    got = np.asarray(expected_risk_reduction(q, weights, case["f"], case["sd"]))
    prior = _exact_risk(case, c2, weights, [])
    exact = np.array([prior - _exact_risk(case, c2, weights, [m]) for m in range(6)])
    np.testing.assert_allclose(got, exact, rtol=0.03, atol=0.01 * prior)
    # The brute-force nested Monte Carlo on fewer draws agrees too.
    small = slice(0, 4000)
    mc = np.asarray(expected_risk_reduction_mc(jax.random.PRNGKey(1), q[small], weights,
                                               case["f"][small], case["sd"][small],
                                               num_outcomes=800))
    np.testing.assert_allclose(mc, exact, atol=0.08 * prior)
    # One quantity with unit weight is the n-opt criterion.
    np.testing.assert_allclose(
        np.asarray(expected_risk_reduction(q[:, :1], np.ones(1), case["f"], case["sd"])),
        np.asarray(expected_variance_reduction(case["g"], case["f"], case["sd"])))


def test_batch_of_several_quantities_conditions_exactly_and_respects_allowed():
    case = _linear_gaussian(200_000, seed=4)
    c2 = np.array([1.0, 0.0, -0.5])
    q = np.column_stack([case["g"], case["theta"] @ c2])
    weights = np.array([1.0, 3.0])
    picks, _, reductions, _ = select_batch(q, case["f"], case["sd"], np.ones(6),
                                           remaining_flops=10.0, batch_size=3, weights=weights)
    prior = _exact_risk(case, c2, weights, [])
    after = prior - np.cumsum(reductions)
    for k in range(3):
        assert after[k] == pytest.approx(_exact_risk(case, c2, weights, picks[: k + 1]),
                                         rel=0.03, abs=0.01 * prior)
    # The n-opt criterion is the (S,) case of the same routine.
    single = select_batch(case["g"], case["f"], case["sd"], np.ones(6), remaining_flops=10.0,
                          batch_size=3)
    as_matrix = select_batch(case["g"][:, None], case["f"], case["sd"], np.ones(6),
                             remaining_flops=10.0, batch_size=3, weights=np.ones(1))
    assert single[0] == as_matrix[0]
    np.testing.assert_allclose(single[2], as_matrix[2])
    # Picks stay inside the allowed set.
    allowed = np.zeros(6, bool)
    allowed[[1, 4]] = True
    picks, *_ = select_batch(q, case["f"], case["sd"], np.ones(6), remaining_flops=10.0,
                             batch_size=3, weights=weights, allowed=allowed)
    assert set(picks) == {1, 4}
    with pytest.raises(ValueError, match="weights"):
        select_batch(q, case["f"], case["sd"], np.ones(6), remaining_flops=10.0,
                     weights=np.ones(3))

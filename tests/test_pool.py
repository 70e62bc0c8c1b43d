"""Pool mode: reading pools, the purchase ledger, region acquisition, strategies and checkpoints."""

import math

import jax
import numpy as np
import pytest

from bayes_scaling.errors import DataFormatError, LedgerError
from bayes_scaling.law import LawParams, predict_loss
from bayes_scaling.pool import PoolOracle, PurchaseLedger, pool_from_arrays, read_pool
from bayes_scaling.pool_acquisition import (
    RegionDiscrepancy,
    region_variance_reduction,
    select_region_batch,
)
from bayes_scaling.pool_loop import (
    LAW_PARAMETERS,
    PoolLoopConfig,
    PoolModel,
    PoolTarget,
    default_pool_model,
    initial_pool_design,
    ratio_window_mask,
    region_discrepancy,
    run_pool_loop,
)
from bayes_scaling.pool_scoring import r2_clipped
from fake_posterior import TRUE_LAW, FakePosterior


def synthetic_pool(n_sizes=8, n_ratios=6, seed=0):
    """Runs of the true law on a grid of sizes x tokens-per-parameter, with 1% noise."""
    rng = np.random.default_rng(seed)
    n = np.repeat(np.geomspace(2e7, 2e9, n_sizes), n_ratios)
    d = n * np.tile(np.geomspace(2, 200, n_ratios), n_sizes)
    law = LawParams(**TRUE_LAW)
    loss = np.asarray(predict_loss(law, n, d)) * np.exp(0.01 * rng.standard_normal(n.size))
    return n, d, loss


def split(n, d, loss, top=0.15):
    flops = 6 * n * d
    is_target = flops >= np.quantile(flops, 1 - top)
    pool, pool_loss = pool_from_arrays(n[~is_target], d[~is_target], loss[~is_target])
    target_pool, target_loss = pool_from_arrays(n[is_target], d[is_target], loss[is_target])
    return pool, pool_loss, PoolTarget(features=target_pool.features, loss=target_loss)


def fake_model():
    def fit(rng_key, features, loss):
        assert np.all(np.isfinite(loss))
        return FakePosterior(seed=len(loss))

    return PoolModel(fit=fit, final_fit=fit)


def test_read_pool_costs_blank_losses_and_errors(tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text("n_params,n_tokens,loss,cost\n1e8,2e9,3.1,5\n2e8,4e9,,7\n1e8,2e9,3.1,5\n")
    pool, loss = read_pool(path)
    assert len(pool) == 3 and pool.total_cost == 17.0
    assert np.isnan(loss[1]) and loss[0] == 3.1
    assert pool.row_numbers == (2, 3, 4)
    assert len(set(pool.keys)) == 3  # the repeat gets its own key
    assert pool.cost_source == "the file's 'cost' column"
    path.write_text("n_params,n_tokens,loss\n1e8,2e9,3.1\n")
    pool, _ = read_pool(path)
    assert pool.cost[0] == pytest.approx(6 * 1e8 * 2e9) and pool.cost_source == "6 N D"
    path.write_text("n_params,n_tokens,loss,cost\n1e8,2e9,3.1,\n")
    with pytest.raises(DataFormatError, match="row 2, column 'cost'"):
        read_pool(path)


def test_read_pool_api_rows_cost_is_train_flops(tmp_path):
    path = tmp_path / "api.csv"
    path.write_text("d_model,num_layers,num_heads,batch_size,learning_rate,train_flops,loss\n"
                    "256,4,4,128,0.001,1000000000000000,5.5\n512,8,8,128,0.001,3e15,\n")
    pool, loss = read_pool(path)
    assert pool.kind == "api" and list(pool.cost) == [1e15, 3e15]
    assert np.isnan(loss[1]) and pool.configs[1].d_model == 512


def test_oracle_records_before_revealing_and_never_sells_twice(tmp_path):
    n, d, loss = synthetic_pool(3, 2)
    pool, pool_loss = pool_from_arrays(n, d, loss)
    pool_loss[3] = np.nan
    ledger_path = tmp_path / "purchases.sqlite"
    with PurchaseLedger(ledger_path) as ledger:
        oracle = PoolOracle(pool, pool_loss, ledger)
        assert oracle.buy(0, "test") == pytest.approx(loss[0])
        assert oracle.buy(3, "plan") is None
        with pytest.raises(LedgerError, match="repeat"):
            oracle.buy(0, "again")
        assert [p.row_key for p in ledger.purchases()] == [pool.keys[0], pool.keys[3]]
    # A new process: the ledger holds both; the planned loss now measured is filled in.
    pool_loss[3] = 3.0
    with PurchaseLedger(ledger_path) as ledger:
        oracle = PoolOracle(pool, pool_loss, ledger)
        assert oracle.order() == [0, 3] and oracle.pending() == []
        assert oracle.spent == pytest.approx(pool.cost[0] + pool.cost[3])
        assert ledger.purchases()[1].loss == 3.0
    # A pool file that lost a bought row is refused.
    with PurchaseLedger(ledger_path) as ledger, pytest.raises(LedgerError, match="missing"):
        PoolOracle(pool.take([1, 2]), pool_loss[[1, 2]], ledger)


def test_region_reduction_matches_gaussian_conditioning():
    rng = np.random.default_rng(1)
    s = 4000
    latent = rng.standard_normal((s, 3))
    mix = rng.standard_normal((3, 7))
    draws = latent @ mix  # (S, 7): columns 0-1 targets, 2-6 candidates
    target, cand = draws[:, :2], draws[:, 2:]
    noise = np.full_like(cand, 0.3)
    cov = np.cov(draws, rowvar=False)
    exact = []
    for m in range(5):
        j = 2 + m
        post = cov[:2, :2] - np.outer(cov[:2, j], cov[j, :2]) / (cov[j, j] + 0.09)
        exact.append(np.trace(cov[:2, :2]) - np.trace(post))
    np.testing.assert_allclose(region_variance_reduction(target, cand, noise), exact, rtol=1e-6)
    # The second greedy pick is scored on the covariance conditioned on the first.
    picks, _, reductions = select_region_batch(target, cand, noise, np.ones(5), remaining=10,
                                               batch_size=2)
    j1, j2 = 2 + picks[0], 2 + picks[1]
    cov1 = cov - np.outer(cov[:, j1], cov[j1, :]) / (cov[j1, j1] + 0.09)
    post2 = cov1[:2, :2] - np.outer(cov1[:2, j2], cov1[j2, :2]) / (cov1[j2, j2] + 0.09)
    assert reductions[1] == pytest.approx(np.trace(cov1[:2, :2]) - np.trace(post2), rel=1e-6)
    assert reductions[0] == pytest.approx(max(exact), rel=1e-6)


def test_region_prices_per_flop_and_vopt():
    rng = np.random.default_rng(2)
    latent = rng.standard_normal((2000, 1))
    target = latent @ np.ones((1, 2))
    cand = latent @ np.array([[1.0, 1.0]]) + 0.01 * rng.standard_normal((2000, 2))
    noise = np.full_like(cand, 0.1)
    costs = np.array([1.0, 100.0])  # equally informative; the second 100x dearer
    picks, _, _ = select_region_batch(target, cand, noise, costs, remaining=1e3, price="v-opt",
                                      total_cost=101.0)
    assert picks == [0]
    # Too dear: never chosen, whatever its information.
    picks, _, _ = select_region_batch(target, cand, noise, np.array([5.0, 1.0]), remaining=2.0)
    assert picks == [1]


def test_discrepancy_reduction_moves_the_data_edge():
    # Two target rows beyond the edge (0, 0, 0) of ln N, ln D, ln C.
    disc = RegionDiscrepancy(
        weight=np.array([1.0, 2.0]),
        target_log=np.array([[1.0, 0.0, 3.0], [2.0, 0.0, 1.0]]),
        candidate_log=np.array([[0.0, 0.0, 2.0],    # pushes the compute edge to 2
                                [2.0, 0.0, 0.0],    # pushes the size edge to 2
                                [-1.0, -1.0, -1.0]]),  # inside the data: moves nothing
        edge=np.zeros(3))
    # u = (3, 2) now: variance 1 * 3 + 2 * 2.
    assert disc.variance(disc.edge) == pytest.approx(7.0)
    # after candidate 0: u = (max(1, 0, 1), max(2, 0, 0)) = (1, 2); after 1: (3, 1)
    np.testing.assert_allclose(disc.reduction(disc.edge), [7 - 5, 7 - 5, 0.0])
    # Law part uninformative (targets uncorrelated with candidates): the discrepancy decides,
    # and the second pick is scored from the edge the first moved.
    rng = np.random.default_rng(0)
    target = rng.standard_normal((500, 2))
    cand = rng.standard_normal((500, 3)) * 1e-6
    picks, _, reductions = select_region_batch(target, cand, np.full_like(cand, 0.1),
                                               np.ones(3), remaining=10, batch_size=2,
                                               discrepancy=disc)
    assert set(picks) == {0, 1}
    assert reductions[0] == pytest.approx(2.0, abs=1e-6)
    # both: edge (2, 0, 2), u = (1, 0), variance 1; the second pick gains 5 - 1
    assert reductions[1] == pytest.approx(4.0, abs=1e-6)
    # Without it the law part alone is (near) nothing for every candidate.
    _, _, law_only = select_region_batch(target, cand, np.full_like(cand, 0.1), np.ones(3),
                                         remaining=10, batch_size=1)
    assert law_only[0] < 1e-6


def test_region_discrepancy_weights_from_the_posterior():
    n, d, loss = synthetic_pool()
    pool, _, target = split(n, d, loss)
    fitted = pool.features.take(np.argsort(pool.cost)[:10])

    class WithDiscrepancy(FakePosterior):
        def predictive_sd(self, features):  # noise plus 0.03 * sqrt(u) in quadrature
            from bayes_scaling.model import DataRange, extrapolation_distance

            u = extrapolation_distance(DataRange.from_features(fitted), features.n_params,
                                       features.n_tokens, features.flops)
            return np.hypot(self.noise_sd(features), 0.03 * np.sqrt(u))

    disc = region_discrepancy(WithDiscrepancy(), fitted, pool.features, target.features)
    np.testing.assert_allclose(disc.weight, 0.03**2)
    assert disc.edge[2] == pytest.approx(np.log(fitted.flops.max()))
    # A posterior without a discrepancy: nothing to add.
    assert region_discrepancy(FakePosterior(), fitted, pool.features, target.features) is None


@pytest.mark.parametrize("strategy", ["active-region", "active"])
def test_active_strategies_buy_inside_the_target_ratio_range(strategy):
    n = np.repeat(np.geomspace(2e7, 2e9, 8), 6)
    d = n * np.tile(np.geomspace(0.05, 500, 6), 8)  # ratios beyond the target's on both sides
    loss = np.asarray(predict_loss(LawParams(**TRUE_LAW), n, d))
    is_target = (n >= 1e9) & (d / n > 0.3) & (d / n < 100)
    pool, pool_loss = pool_from_arrays(n[~is_target], d[~is_target], loss[~is_target])
    tp, tl = pool_from_arrays(n[is_target], d[is_target], loss[is_target])
    target = PoolTarget(features=tp.features, loss=tl)
    inside = ratio_window_mask(pool, target, 1.0)
    assert 0 < inside.sum() < len(pool)
    result = run_pool_loop(jax.random.PRNGKey(0), pool,
                           PoolOracle(pool, pool_loss, PurchaseLedger(":memory:")), target,
                           PoolLoopConfig(strategy=strategy, budget_fractions=(0.3,)),
                           model=fake_model())
    design = initial_pool_design(pool, 0.02 * pool.total_cost)
    later = [inside[i] for i in result.order if i not in design]
    # rows in the target's range first; the others only once those are all bought
    n_inside = int(inside.sum()) - int(inside[design].sum())
    assert later[:n_inside] == [True] * n_inside and len(later) > n_inside


def test_initial_design_cheapest_rows_within_cap():
    n, d, loss = synthetic_pool()
    pool, _ = pool_from_arrays(n, d, loss)
    design = initial_pool_design(pool, cap=0.02 * pool.total_cost)
    assert len(design) <= math.floor(2.5 * LAW_PARAMETERS)
    assert pool.cost[design].sum() <= 0.02 * pool.total_cost
    cheapest = np.argsort(pool.cost, kind="stable")[: len(design)]
    assert design == list(cheapest)


@pytest.mark.parametrize("strategy", ["random", "cheapest", "cost-random", "v-opt",
                                      "active-region", "active"])
def test_checkpoints_never_exceeded(strategy):
    n, d, loss = synthetic_pool()
    pool, pool_loss, target = split(n, d, loss)
    config = PoolLoopConfig(strategy=strategy, budget_fractions=(0.05, 0.2, 0.4))
    seen = []
    oracle = PoolOracle(pool, pool_loss, PurchaseLedger(":memory:"))
    result = run_pool_loop(jax.random.PRNGKey(3), pool, oracle, target, config,
                           model=fake_model(), on_checkpoint=seen.append)
    assert [c["fraction"] for c in result.checkpoints] == [0.05, 0.2, 0.4]
    for c in result.checkpoints:
        assert c["spent"] <= c["budget"] * (1 + 1e-12)
        assert -1 <= c["r2"] <= 1 and 0 <= c["coverage90"] <= 1
    assert len(set(result.order)) == len(result.order)
    assert seen == result.checkpoints
    if strategy == "cheapest":
        assert list(np.diff(pool.cost[result.order]) >= 0) == [True] * (len(result.order) - 1)


def test_all_data_buys_everything_once():
    n, d, loss = synthetic_pool()
    pool, pool_loss, target = split(n, d, loss)
    oracle = PoolOracle(pool, pool_loss, PurchaseLedger(":memory:"))
    result = run_pool_loop(jax.random.PRNGKey(0), pool, oracle, target,
                           PoolLoopConfig(strategy="all-data"), model=fake_model())
    assert sorted(result.order) == list(range(len(pool)))
    assert [c["fraction"] for c in result.checkpoints] == [1.0]


def test_r2_clipped():
    assert r2_clipped([1, 2, 3], [1, 2, 3]) == 1.0
    assert r2_clipped([1, 2, 3], [30, 0, -9]) == -1.0
    assert r2_clipped([1, 2, 3], [2, 2, 2]) == pytest.approx(0.0)


def test_planning_stops_with_next_runs_then_resumes():
    n, d, loss = synthetic_pool()
    pool, pool_loss, target = split(n, d, loss)
    hidden = pool_loss.copy()
    planned = np.argsort(pool.cost)[-20:]  # the dear rows are planned runs, not trained yet
    pool_loss[planned] = np.nan
    ledger = PurchaseLedger(":memory:")
    config = PoolLoopConfig(strategy="cost-random", budget_fractions=(0.3, 0.6))
    key = jax.random.PRNGKey(0)
    for _ in range(40):
        result = run_pool_loop(key, pool, PoolOracle(pool, pool_loss, ledger), target, config,
                               model=fake_model())
        if not result.next_runs:
            break
        pending = [i for i in result.order if np.isnan(pool_loss[i])]
        assert {r["rank"] for r in result.next_runs} == set(range(1, len(pending) + 1))
        assert sorted(r["pool_row"] for r in result.next_runs) == sorted(pending)
        pool_loss[pending] = hidden[pending]  # the user trains them and fills in the losses
    assert result.stop_reason == "budget spent" and len(result.checkpoints) == 2
    # resumed runs score each checkpoint on the rows bought by then, not on later purchases
    first, second = result.checkpoints
    assert first["n_bought"] < second["n_bought"]
    assert first["spent"] <= 0.3 * pool.total_cost < second["spent"] <= 0.6 * pool.total_cost
    keys = [p.row_key for p in ledger.purchases()]
    assert len(keys) == len(set(keys)) == len(result.order)
    assert all(p.loss is not None for p in ledger.purchases())


def test_strategy_never_reads_unbought_losses():
    """Unbought pool losses and the target losses replaced by NaN: the same choices."""
    n, d, loss = synthetic_pool(6, 5)
    pool, pool_loss, target = split(n, d, loss, top=0.2)
    config = PoolLoopConfig(strategy="v-opt", budget_fractions=(0.05, 0.2), num_warmup=20,
                            num_samples=20, score_num_warmup=20, score_num_samples=20,
                            score_num_chains=1)
    cache = {}
    first = run_pool_loop(jax.random.PRNGKey(5), pool,
                          PoolOracle(pool, pool_loss, PurchaseLedger(":memory:")), target, config,
                          model=default_pool_model(config, refitters=cache))
    assert len(first.order) > 12  # it went past the initial design
    hidden = pool_loss.copy()
    unbought = np.setdiff1d(np.arange(len(pool)), first.order)
    hidden[unbought] = np.nan
    blind = PoolTarget(features=target.features, loss=np.full(len(target.loss), np.nan))
    second = run_pool_loop(jax.random.PRNGKey(5), pool,
                           PoolOracle(pool, hidden, PurchaseLedger(":memory:")), blind, config,
                           model=default_pool_model(config, refitters=cache))
    assert second.order == first.order
    assert second.next_runs == []

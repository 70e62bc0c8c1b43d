"""The loop's strategies against a fake oracle and a fake posterior (no NUTS)."""

from dataclasses import dataclass

import jax
import numpy as np
import pytest

from bayes_scaling.candidates import CandidateConfig, generate_candidates
from bayes_scaling.diagnostics import Diagnostics
from bayes_scaling.errors import BudgetExceededError
from bayes_scaling.isoflop_grid import IsoflopGridConfig
from bayes_scaling.law import LawParams, optimal_allocation, predict_loss
from bayes_scaling.loop import ActiveConfig, LoopConfig, ModelBackend, initial_design, run_loop
from bayes_scaling.oracle import Observation
from bayes_scaling.params import non_embedding_params
from bayes_scaling.simulator.truth import Truth, observed_loss
from bayes_scaling.space import TRAIN_FLOPS, validate_config


class FakeOracle:
    """The simulator's observed loss behind a hard budget; counts every charge."""

    def __init__(self, budget_flops):
        self.budget_flops = budget_flops
        self._runs = {}
        self.charges = []

    def flops_used(self):
        return float(sum(self.charges))

    def query(self, config):
        key = config.key()
        if key in self._runs:
            return self._runs[key].loss
        validate_config(config)
        if self.flops_used() + config.train_flops > self.budget_flops:
            raise BudgetExceededError("over budget")
        self.charges.append(config.train_flops)
        obs = Observation(config=config, loss=observed_loss(Truth(), config))
        self._runs[key] = obs
        return obs.loss

    def observations(self):
        return list(self._runs.values())


@dataclass
class Features:
    n_params: np.ndarray
    n_tokens: np.ndarray


@dataclass
class Optimum:
    n_params: np.ndarray
    n_tokens: np.ndarray
    loss: np.ndarray
    learning_rate: np.ndarray | None = None


class FakePosterior:
    """Draws of Chinchilla law parameters whose spread shrinks as runs accumulate."""

    diagnostics = Diagnostics(r_hat_max=1.0, ess_bulk_min=1e3, ess_tail_min=1e3, divergences=0)

    def __init__(self, rng_key, n_runs):
        scale = 1.0 / np.sqrt(n_runs)
        z = np.asarray(jax.random.normal(rng_key, (5, 200)))
        self.law = LawParams(
            E=1.9 + 0.1 * scale * z[0], A=400.0 * np.exp(0.3 * scale * z[1]),
            B=550.0 * np.exp(0.3 * scale * z[2]), alpha=0.34 + 0.03 * scale * z[3],
            beta=0.36 + 0.03 * scale * z[4],
        )
        self.draws = self.law._asdict()
        self.num_draws = 200

    def law_params(self):
        return self.law

    def predict_mean(self, features):
        law = LawParams(*(np.asarray(p)[:, None] for p in self.law))
        return np.asarray(predict_loss(law, features.n_params[None], features.n_tokens[None]))

    def noise_sd(self, features):
        return np.full((200, len(features.n_params)), 0.04)

    def optimum(self, flops):
        n, d = optimal_allocation(self.law, flops)
        return Optimum(np.asarray(n), np.asarray(d), np.asarray(predict_loss(self.law, n, d)))

    def optimal_size_median(self, flops):
        return float(np.exp(np.median(np.log(self.optimum(flops).n_params))))


@dataclass
class FakeRecommendation:
    non_embedding_params: float


def fake_backend():
    def featurize(configs):
        n = np.array([non_embedding_params(c.d_model, c.num_layers) for c in configs], float)
        flops = np.array([c.train_flops for c in configs], float)
        return Features(n_params=n, n_tokens=flops / (6 * n))

    def fit(rng_key, features, loss):
        assert len(features.n_params) == len(loss)
        return FakePosterior(rng_key, len(loss))

    def recommend(rng_key, posterior, target):
        return FakeRecommendation(float(np.median(posterior.optimum(target).n_params)))

    return ModelBackend(featurize=featurize, fit=fit, recommend=recommend)


@pytest.mark.parametrize("strategy", ["active", "random", "isoflop-grid"])
@pytest.mark.parametrize("budget", [3e17, 2e18])
def test_strategies_never_exceed_the_budget(strategy, budget):
    oracle = FakeOracle(budget)
    config = LoopConfig(budget_flops=budget, strategy=strategy, max_queries=16,
                        isoflop_grid=IsoflopGridConfig(fit_baseline_posterior=False,
                                                       num_bootstrap=20),
                        active=ActiveConfig(candidates=CandidateConfig(num_random=300,
                                                                       num_focus=100)))
    events = []
    result = run_loop(jax.random.PRNGKey(1), oracle, config, backend=fake_backend(),
                      callback=events.append)
    assert oracle.flops_used() <= budget
    assert result.flops_used == oracle.flops_used()
    keys = [o.config.key() for o in result.observations]
    assert len(keys) == len(set(keys)) == len(oracle.charges) <= 16
    assert result.recommendation is not None
    assert set(result.timings) >= {"fit", "acquisition", "query", "total"}
    assert events and all(e.flops_used <= budget for e in events)
    assert result.history and all(h["n_opt_ci90_ln_width"] >= 0 for h in result.history)


def test_active_stops_when_interval_is_narrow():
    oracle = FakeOracle(2e18)
    config = LoopConfig(strategy="active", max_queries=40, active=ActiveConfig(
        stop_ci_width=10.0, candidates=CandidateConfig(num_random=200, num_focus=100)))
    result = run_loop(jax.random.PRNGKey(0), oracle, config, backend=fake_backend())
    assert result.stop_reason == "interval narrower than stop width"
    assert len(result.observations) == config.active.num_initial


def test_active_continues_a_resumed_oracle_without_repaying():
    oracle = FakeOracle(2e18)
    config = LoopConfig(strategy="active", max_queries=12, active=ActiveConfig(
        candidates=CandidateConfig(num_random=300, num_focus=100)))
    run_loop(jax.random.PRNGKey(0), oracle, LoopConfig(strategy="active", max_queries=10,
             active=config.active), backend=fake_backend())
    paid_before = len(oracle.charges)
    result = run_loop(jax.random.PRNGKey(0), oracle, config, backend=fake_backend())
    assert len(oracle.charges) == len(result.observations) <= 12
    assert len(oracle.charges) >= paid_before


def test_initial_design_is_valid_and_cheap():
    design = initial_design(jax.random.PRNGKey(3), budget_flops=2e18, num_initial=8)
    assert len({c.key() for c in design}) == 8
    for c in design:
        validate_config(c)
    assert sum(c.train_flops for c in design) <= 0.1 * 2e18


def test_candidates_respect_space_budget_and_paid():
    paid = initial_design(jax.random.PRNGKey(0), budget_flops=2e18, num_initial=6)
    focus = {int(f): 5e7 for f in TRAIN_FLOPS}
    cands = generate_candidates(jax.random.PRNGKey(2), remaining_flops=1e17, paid=paid,
                                focus_n_params=focus,
                                config=CandidateConfig(num_random=2000, num_focus=800))
    assert len(cands) > 1500
    keys = {c.key() for c in cands}
    assert len(keys) == len(cands)
    assert not keys & {c.key() for c in paid}
    for c in cands:
        validate_config(c)
        assert c.train_flops <= 1e17
    assert {c.batch_size for c in cands} == {128, 256}
    lrs = {c.learning_rate for c in cands}
    assert min(lrs) == pytest.approx(1e-4) and max(lrs) == pytest.approx(1e-3)
    assert generate_candidates(jax.random.PRNGKey(2), remaining_flops=1e12) == []


def test_candidates_with_a_head_dimension_keep_one_head_count_per_shape():
    cands = generate_candidates(jax.random.PRNGKey(3), remaining_flops=2e18,
                                config=CandidateConfig(num_random=3000, num_focus=0, head_dim=64))
    heads = {}
    for c in cands:
        validate_config(c)
        heads.setdefault(c.d_model, set()).add(c.num_heads)
    assert all(len(h) == 1 for h in heads.values()), heads
    # nearest 64 in log among the API's power-of-two head counts; ties (none here) take more heads
    expected = {64: 2, 128: 2, 192: 4, 320: 4, 384: 8, 512: 8, 704: 8, 768: 16, 1024: 16}
    assert len(heads) == 16  # every d_model of the 64 grid is still offered
    assert {d: min(heads[d]) for d in expected} == expected
    every = generate_candidates(jax.random.PRNGKey(3), remaining_flops=2e18,
                                config=CandidateConfig(num_random=3000, num_focus=0))
    assert {c.num_heads for c in every if c.d_model == 1024} == {2, 4, 8, 16}
    assert LoopConfig.from_flat(query_head_dim=64).active.candidates.head_dim == 64
    with pytest.raises(ValueError, match="head_dim"):
        CandidateConfig(head_dim=0)


def test_loop_config_rejects_bad_values():
    with pytest.raises(ValueError, match="strategy"):
        LoopConfig(strategy="greedy")
    with pytest.raises(ValueError, match="budget_flops"):
        LoopConfig(budget_flops=-1.0)
    with pytest.raises(ValueError, match="max_queries"):
        LoopConfig(max_queries=0)


def test_active_spends_the_budget_and_prices_cheap_runs_at_the_floor(monkeypatch):
    import bayes_scaling.acquisition as acquisition

    scored = []  # (reduction, costs, floor) of every pick decision, and what was chosen
    real_score = acquisition.score_candidates

    def spy(reduction, costs, **kwargs):
        score = real_score(reduction, costs, **kwargs)
        scored.append((np.asarray(reduction), np.asarray(costs), kwargs["cost_floor"], score))
        return score

    monkeypatch.setattr(acquisition, "score_candidates", spy)
    budget = 2e18
    oracle = FakeOracle(budget)
    config = LoopConfig(strategy="active", max_queries=120, active=ActiveConfig(
        planned_queries=24, candidates=CandidateConfig(num_random=400, num_focus=200)))
    result = run_loop(jax.random.PRNGKey(0), oracle, config, backend=fake_backend())
    # The budget is (nearly) spent, well before the safety bound on queries.
    assert result.stop_reason == "budget spent"
    assert budget * (1 - config.leftover_fraction) <= oracle.flops_used() <= budget
    assert len(result.observations) < config.max_queries
    # Runs near the compute frontier were bought, not only cheap ones.
    assert max(oracle.charges) >= 3e17
    assert scored
    floors = [floor for _, _, floor, _ in scored]
    assert floors[0] == pytest.approx(
        (budget - sum(oracle.charges[: config.active.num_initial]))
        / (24 - config.active.num_initial))
    assert max(floors) > 3 * floors[0]  # the floor rises as the planned queries run out
    for reduction, costs, floor, score in scored:
        best = int(np.argmax(score))
        if not np.isfinite(score[best]):
            continue
        affordable = np.isfinite(score)
        # A query cheaper than the floor is bought only if nothing affordable costing up to the
        # floor is more informative, and no dearer query buys more information per FLOP.
        if costs[best] < floor:
            assert reduction[best] >= reduction[affordable & (costs <= floor)].max()
        dearer = affordable & (costs > max(costs[best], floor))
        if dearer.any():
            assert reduction[best] / max(costs[best], floor) >= (
                reduction[dearer] / costs[dearer]).max()
    # Nearly all the FLOPs went to runs of at least 1e16; tiny runs only in the initial design.
    acquired = oracle.charges[config.active.num_initial:]
    assert sum(c for c in acquired if c >= 1e16) >= 0.95 * sum(acquired)


@pytest.mark.parametrize("criterion", ["n-opt", "decision"])
@pytest.mark.parametrize("budget_plan", ["greedy", "c-optimal"])
def test_criteria_and_budget_plans(monkeypatch, criterion, budget_plan):
    import bayes_scaling.loop as loop

    calls = []  # (allowed, picks) of every acquisition step
    real = loop.select_batch

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append((kwargs["allowed"], kwargs["weights"], out[0]))
        return out

    monkeypatch.setattr(loop, "select_batch", spy)
    budget = 1e18
    oracle = FakeOracle(budget)
    config = LoopConfig.from_flat(
        budget_flops=budget, criterion=criterion, budget_plan=budget_plan, max_queries=16,
        planned_queries=16, candidates=CandidateConfig(num_random=300, num_focus=100))
    result = run_loop(jax.random.PRNGKey(2), oracle, config, backend=fake_backend())
    assert oracle.flops_used() <= budget
    assert calls
    for allowed, weights, picks in calls:
        assert (allowed is None) == (budget_plan == "greedy")
        if allowed is not None:
            assert 0 < allowed.sum() < allowed.size and all(allowed[i] for i in picks)
        # decision: ln N_opt and the optimal loss (the fake has no learning-rate term).
        assert (weights is None) == (criterion == "n-opt")
        if weights is not None:
            assert weights.shape == (2,) and np.all(weights > 0)
    extra = result.extra
    assert 0 < extra["oracle_sd_ln_n_opt"] <= extra["achieved_sd_ln_n_opt"] / 0.999
    assert extra["design_efficiency"] == pytest.approx(
        extra["oracle_sd_ln_n_opt"] / extra["achieved_sd_ln_n_opt"])
    assert extra["oracle_design"]["floor_flops"] == pytest.approx(budget / 16)
    assert result.timings["design"] > 0


def test_loop_config_rejects_unknown_criterion_and_plan():
    with pytest.raises(ValueError, match="criterion"):
        LoopConfig(criterion="entropy")
    with pytest.raises(ValueError, match="budget_plan"):
        ActiveConfig(budget_plan="lookahead")
    assert LoopConfig.from_flat(budget_plan="c-optimal").active.budget_plan == "c-optimal"

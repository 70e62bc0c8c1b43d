"""The 2026 API in-process on a virtual clock, and the jobs loop on it (fake posterior)."""

import jax
import numpy as np
import pytest

from bayes_scaling.candidates2026 import training_config
from bayes_scaling.errors import BudgetExceededError
from bayes_scaling.features import features_from_configs
from bayes_scaling.jobs_loop import JobsLoopConfig, run_jobs_loop
from bayes_scaling.loop import ModelBackend
from bayes_scaling.params2026 import count_params_2026
from bayes_scaling.recommend import recommend
from bayes_scaling.simulator.server2026 import plan_finish
from bayes_scaling.simulator.truth2026 import Truth2026, simulate_run
from bayes_scaling.simulator.virtual2026 import QUEUE_SECONDS, VirtualJobsOracle
from fake_posterior import FakePosterior


def config(tokens=2e8, reserve=600.0, d=256):
    return training_config(hidden_size=d, num_layers=4, head_dim=64, intermediate_size=704,
                           peak_learning_rate=1e-3, warmup_frac=0.05, batch_size=64,
                           tokens=tokens, max_runtime_seconds=reserve)


def test_reservation_charge_refund_and_the_servers_curve():
    truth = Truth2026()
    oracle = VirtualJobsOracle(truth, 1000.0, time_scale=100.0)
    cfg = config()
    run = simulate_run(truth, cfg)
    assert run.train_seconds < 600.0
    oracle.submit(cfg)
    assert oracle.budget_committed() == 600.0 and oracle.in_flight() == [cfg]
    assert oracle.submit(cfg) == cfg.unique_id and oracle.budget_committed() == 600.0  # 409
    with pytest.raises(BudgetExceededError):
        oracle.submit(config(reserve=400.1, d=320))  # 400.1 > 1000 - 600
    oracle.sleep((QUEUE_SECONDS + run.setup_seconds + run.train_seconds) / 100.0 - 0.01)
    assert oracle.poll() == [] and oracle.in_flight() == [cfg]
    oracle.sleep(0.02)
    (outcome,) = oracle.poll()
    assert oracle.poll() == [] and oracle.in_flight() == []
    assert outcome.state == "completed" and outcome.failure is None
    assert outcome.final_loss == run.val_losses[-1]
    assert [loss for _, loss in outcome.curve] == list(run.val_losses)
    assert outcome.charged == pytest.approx(run.train_seconds)
    assert oracle.budget_committed() == pytest.approx(run.train_seconds)  # refunded
    assert oracle.outcomes() == [outcome]


def test_a_timeout_is_charged_its_whole_reservation():
    truth = Truth2026()
    cfg = config(tokens=2e9, reserve=5.0)
    plan = plan_finish(simulate_run(truth, cfg), 5.0)
    assert plan.status == "failed"
    oracle = VirtualJobsOracle(truth, 100.0)
    oracle.submit(cfg)
    oracle.sleep(10.0)
    (outcome,) = oracle.poll()
    assert outcome.state == "failed" and outcome.failure == "timeout"
    assert outcome.final_loss is None and outcome.charged == 5.0
    assert len(outcome.curve) == len(plan.val_losses) < cfg.n_evals


def test_the_jobs_loop_spends_a_virtual_budget_and_counts_in_2026_units():
    oracle = VirtualJobsOracle(Truth2026(), 6000.0)
    backend = ModelBackend(featurize=features_from_configs, recommend=recommend,
                           fit=lambda key, features, loss: FakePosterior(lr0=2e-3, n_draws=100))
    config_ = JobsLoopConfig(num_candidates=300, poll_min=0.05, poll_max=1.0)
    result = run_jobs_loop(jax.random.PRNGKey(0), oracle, config_, backend=backend,
                           sleep=oracle.sleep)
    assert result.stop_reason == "budget spent"
    assert 0.9 * 6000.0 < oracle.seconds_charged() <= 6000.0
    assert result.max_in_flight_seen >= 3
    assert all(o.state == "completed" for o in result.outcomes)
    final = result.training_config
    arch = final.architecture_config
    counts = count_params_2026(arch)
    rec = result.recommendation
    assert (rec.non_embedding_params, rec.total_params) == (counts.non_embedding, counts.total)
    choices = result.extra["residual_choices"]
    family = result.extra["recommend_family"]
    assert family["head_dim"] == choices["head_dim"] == arch.head_dim
    assert family["intermediate_ratio"] == choices["intermediate_ratio"]
    assert final.optimizer_config.lr_scheduler.warmup_frac == choices["warmup_frac"]
    groups = choices["groups"]["intermediate_ratio"]
    assert sum(g["runs"] for g in groups.values()) == len(result.outcomes)
    assert np.isfinite(rec.predicted_loss).all()

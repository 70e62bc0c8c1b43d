"""Session: the budget asked of the oracle, every refusal logged, one result type."""

import logging

import jax
import pytest

from bayes_scaling.acquisition import AcquisitionConfig
from bayes_scaling.errors import InvalidConfigError
from bayes_scaling.inference import NutsConfig
from bayes_scaling.isoflop_grid import IsoflopGridConfig
from bayes_scaling.loop import ActiveConfig, LoopConfig, run_loop
from bayes_scaling.session import Session
from bayes_scaling.space import RunConfig
from test_loop import FakeOracle


def _config(flops):
    return RunConfig(d_model=256, num_layers=4, num_heads=4, batch_size=128,
                     learning_rate=1e-3, train_flops=int(flops))


def test_budget_and_refusals_come_from_the_oracle(caplog):
    oracle = FakeOracle(2e16)
    session = Session(oracle, target_flops=1e19, max_queries=2)
    assert session.budget == 2e16 and session.remaining() == 2e16
    caplog.set_level(logging.INFO, logger="bayes_scaling.session")
    assert session.query(_config(1e16), reason="test")
    assert session.remaining() == pytest.approx(1e16)
    # over budget: the oracle refuses, nothing is charged, the refusal is logged
    assert not session.query(_config(3e16), reason="test")
    assert "refused by the oracle" in caplog.text and oracle.charges == [1e16]
    assert session.query(_config(1e16), reason="repeat")  # a repeat is free
    assert oracle.charges == [1e16]
    assert session.query(_config(1e15), reason="test")
    caplog.clear()
    assert not session.query(_config(3e15), reason="test")  # the third paid query
    assert "limit of 2 paid queries" in caplog.text
    assert session.n_queries == 2


def test_loop_config_is_composed_and_from_flat_maps_the_flat_names():
    config = LoopConfig.from_flat(budget_flops=1e18, num_warmup=10, final_num_chains=2,
                                  planned_queries=12, num_bootstrap=30,
                                  acquisition=AcquisitionConfig(cost_floor=1.0))
    assert config.budget_flops == 1e18
    assert config.nuts == NutsConfig(num_warmup=10, num_samples=150, num_chains=1)
    assert config.final_nuts == NutsConfig(num_warmup=500, num_samples=1000, num_chains=2)
    assert config.active == ActiveConfig(planned_queries=12,
                                         acquisition=AcquisitionConfig(cost_floor=1.0))
    assert config.isoflop_grid == IsoflopGridConfig(num_bootstrap=30)
    with pytest.raises(ValueError, match="unknown name 'num_warmups'"):
        LoopConfig.from_flat(num_warmups=10)
    with pytest.raises(ValueError, match="num_initial"):
        ActiveConfig(num_initial=1)


def test_run_loop_refuses_a_second_budget():
    with pytest.raises(InvalidConfigError, match="oracle's budget 1e\\+18"):
        run_loop(jax.random.PRNGKey(0), FakeOracle(1e18), LoopConfig(budget_flops=2e18))

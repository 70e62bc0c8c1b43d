"""The ledger and the ledgered oracle over the in-process simulated API."""

from __future__ import annotations

import pytest

from bayes_scaling.api.ledger import Ledger
from bayes_scaling.api.oracle import LedgeredOracle, open_oracle
from bayes_scaling.errors import BudgetExceededError, InvalidConfigError, LedgerError
from bayes_scaling.oracle import LossOracle, Observation
from bayes_scaling.simulator.inprocess import SimulatedApi
from bayes_scaling.simulator.truth import Truth, observed_loss
from bayes_scaling.space import RunConfig


def _config(i: int = 0, flops: int = 10**15) -> RunConfig:
    return RunConfig(
        d_model=128 + 64 * i, num_layers=4, num_heads=2, batch_size=128, learning_rate=3e-4,
        train_flops=flops,
    )


class CountingBackend:
    """A backend that counts the paid calls that reach it."""

    def __init__(self, inner):
        self.inner = inner
        self.loss_calls = 0

    def loss(self, config):
        self.loss_calls += 1
        return self.inner.loss(config)

    def total_flops_used(self):
        return self.inner.total_flops_used()

    def previous_runs(self):
        return self.inner.previous_runs()


def test_ledger_records_durably_and_in_order(tmp_path):
    path = tmp_path / "sub" / "ledger.sqlite3"
    with Ledger(path) as ledger:
        assert ledger.record(_config(0), 4.0, 1e15)
        assert ledger.record(_config(1, 3 * 10**14), 4.1, 1.3e15, source="reconciled")
        assert not ledger.record(_config(0), 4.0, 1e15)  # already there
        with pytest.raises(LedgerError):
            ledger.record(_config(0), 5.0, 1e15)
    with Ledger(path) as ledger:
        assert len(ledger) == 2
        assert ledger.lookup(_config(0)) == 4.0 and ledger.lookup(_config(2)) is None
        assert ledger.total_flops() == 1.3e15
        entries = ledger.entries()
        assert [e.source for e in entries] == ["query", "reconciled"]
        assert entries[1].total_flops_used == 1.3e15
        assert ledger.observations() == [
            Observation(config=_config(0), loss=4.0),
            Observation(config=_config(1, 3 * 10**14), loss=4.1),
        ]


def test_not_a_ledger_is_a_ledger_error(tmp_path):
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LedgerError):
        Ledger(path)


def test_simulated_api_rules():
    api = SimulatedApi(Truth(), 2e15)
    loss, total = api.loss(_config(0))
    assert loss == observed_loss(Truth(), _config(0)) and total == 1e15
    assert api.loss(_config(0)) == (loss, 1e15)
    api.loss(_config(1))
    with pytest.raises(BudgetExceededError):
        api.loss(_config(2, 10**13))
    with pytest.raises(InvalidConfigError, match="d_model"):
        api.loss(_config(100))
    assert api.total_flops_used() == 2e15
    assert [o.config for o in api.previous_runs()] == [_config(0), _config(1)]


def test_oracle_repeats_from_ledger_and_guards_the_budget(tmp_path):
    backend = CountingBackend(SimulatedApi(Truth(), 2e18))
    with open_oracle(backend, tmp_path / "ledger.sqlite3", budget_flops=2e15) as oracle:
        assert isinstance(oracle, LossOracle)
        first = oracle.query(_config(0))
        assert oracle.query(_config(0)) == first
        assert backend.loss_calls == 1
        oracle.query(_config(1, 6 * 10**14))
        assert oracle.flops_used() == 1.6e15
        with pytest.raises(BudgetExceededError, match="refused locally"):
            oracle.query(_config(2))  # the API would accept (2e18), the guard does not
        assert backend.loss_calls == 2
        with pytest.raises(InvalidConfigError):
            oracle.query(_config(100))
        assert backend.loss_calls == 2
        assert oracle.query(_config(2, 3 * 10**14)) > 0
        assert [o.config for o in oracle.observations()] == [
            _config(0), _config(1, 6 * 10**14), _config(2, 3 * 10**14)
        ]
        assert backend.inner.total_flops_used() == oracle.flops_used() == 1.9e15


def test_oracle_reconciles_a_charge_the_ledger_missed(tmp_path):
    api = SimulatedApi(Truth(), 2e18)
    path = tmp_path / "ledger.sqlite3"
    with open_oracle(api, path, budget_flops=2e18) as oracle:
        oracle.query(_config(0))
    # a crash after the API charged and before the ledger write:
    charged_loss, _ = api.loss(_config(1))
    backend = CountingBackend(api)
    with open_oracle(backend, path, budget_flops=2e18) as oracle:
        assert [e.source for e in oracle.ledger.entries()] == ["query", "reconciled"]
        assert oracle.query(_config(1)) == charged_loss
        assert backend.loss_calls == 0
        assert oracle.flops_used() == api.total_flops_used() == 2e15


class SpentElsewhereBackend(CountingBackend):
    """A key that spent FLOPs the previous-runs listing does not explain."""

    def loss(self, config):
        loss, total = super().loss(config)
        return loss, total + 1.5e15

    def total_flops_used(self):
        return self.inner.total_flops_used() + 1.5e15


def test_oracle_honours_the_apis_spend(tmp_path):
    backend = SpentElsewhereBackend(SimulatedApi(Truth(), 2e18))
    with open_oracle(backend, tmp_path / "l.sqlite3", budget_flops=2e15) as oracle:
        assert oracle.flops_used() == 1.5e15
        with pytest.raises(BudgetExceededError):
            oracle.query(_config(0))
        assert backend.loss_calls == 0
        oracle.query(_config(0, 3 * 10**14))
        assert oracle.flops_used() == 1.8e15


def test_in_process_restart_keeps_the_ledger_as_the_record(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    with open_oracle(SimulatedApi(Truth(), 2e15), path, budget_flops=2e15) as oracle:
        losses = [oracle.query(_config(0)), oracle.query(_config(1))]
    fresh = CountingBackend(SimulatedApi(Truth(), 2e15))  # its memory store starts empty
    with open_oracle(fresh, path, budget_flops=2e15) as oracle:
        assert isinstance(oracle, LedgeredOracle)
        assert [oracle.query(_config(0)), oracle.query(_config(1))] == losses
        assert oracle.flops_used() == 2e15
        with pytest.raises(BudgetExceededError):
            oracle.query(_config(2, 10**13))
        assert fresh.loss_calls == 0

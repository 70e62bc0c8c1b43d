"""Durable 2026 submissions: recorded before sent, reconciled by key, never sent twice."""

from __future__ import annotations

import time

import pytest

from bayes_scaling.api2026.client import JobsApiClient
from bayes_scaling.api2026.jobs_oracle import JobsOracle
from bayes_scaling.api2026.ledger import Ledger
from bayes_scaling.api2026.schemas import ExperimentResponse
from bayes_scaling.candidates2026 import training_config
from bayes_scaling.errors import BudgetExceededError
from bayes_scaling.oracle import ExperimentOracle, SyncExperimentOracle
from jobs_standin import StandIn
from live_server import serve_in_thread

KEY = "k1"


class Crash(Exception):
    pass


def config(i: int, reserve: float = 50.0):
    return training_config(hidden_size=128, num_layers=2, head_dim=64, intermediate_size=384,
                           peak_learning_rate=1e-3, warmup_frac=0.0, batch_size=64,
                           tokens=(i + 1) * 2**20, max_runtime_seconds=reserve)


def crash_at(point: str):
    def hook(name: str) -> None:
        if name == point:
            raise Crash(name)
    return hook


@pytest.fixture()
def server():
    standin = StandIn(keys=(KEY,), budget=1000.0, time_scale=1e5)
    with serve_in_thread(standin.app) as url:
        yield standin, url


def open_oracle(url, path, hook=None, budget=900.0):
    return JobsOracle(JobsApiClient(url, KEY, backoff=0.01), Ledger(path), budget, hook=hook)


def ledger_view(oracle):
    return sorted((s.experiment_id, s.unique_id, s.state, tuple(s.val_losses))
                  for s in oracle.ledger.entries() if s.state != "refused")


def server_view(oracle):
    return sorted((e.experiment_id, e.training_config.unique_id, e.status.status_type,
                   tuple(getattr(e.status, "val_losses", ()) or ()))
                  for e in oracle.client.experiments())


def settle(oracle, timeout=10.0):
    deadline = time.monotonic() + timeout
    while oracle.in_flight() and time.monotonic() < deadline:
        oracle.poll()
        time.sleep(0.05)
    oracle.poll()


def test_both_backends_satisfy_the_protocol(server, tmp_path):
    from bayes_scaling.api.oracle import open_oracle as open_2025
    from bayes_scaling.simulator.inprocess import SimulatedApi
    from bayes_scaling.simulator.truth import load_truth
    from bayes_scaling.space import RunConfig

    _, url = server
    assert isinstance(open_oracle(url, tmp_path / "a.sqlite"), ExperimentOracle)
    sync = SyncExperimentOracle(open_2025(SimulatedApi(load_truth(None), 2e18),
                                          tmp_path / "b.sqlite", 2e18))
    assert isinstance(sync, ExperimentOracle)
    cfg = RunConfig(d_model=128, num_layers=2, num_heads=2, batch_size=128,
                    learning_rate=1e-3, train_flops=10**15)
    sync.submit(cfg)
    (outcome,) = sync.poll()
    assert outcome.state == "completed" and outcome.loss_kind == "train"
    assert sync.budget_committed() == 1e15 and not sync.in_flight()


def test_crash_between_record_and_send_sends_once_on_resume(server, tmp_path):
    standin, url = server
    path = tmp_path / "ledger.sqlite"
    oracle = open_oracle(url, path, hook=crash_at("recorded"))
    with pytest.raises(Crash):
        oracle.submit(config(0))
    oracle.close()
    assert standin.submits == 0
    resumed = open_oracle(url, path)
    assert [s.state for s in resumed.ledger.entries()] == ["recorded"]
    resumed.sync()
    settle(resumed)
    assert standin.submits == 1 and len(standin.rows) == 1
    assert ledger_view(resumed) == server_view(resumed)
    assert resumed.submit(config(0)) and standin.submits == 1  # known: not sent again


def test_crash_after_send_attaches_without_sending_again(server, tmp_path):
    standin, url = server
    path = tmp_path / "ledger.sqlite"
    oracle = open_oracle(url, path, hook=crash_at("sent"))
    with pytest.raises(Crash):
        oracle.submit(config(1))
    oracle.close()
    time.sleep(0.2)  # the run completes while the client is down
    resumed = open_oracle(url, path)
    resumed.sync()
    assert standin.submits == 1
    (outcome,) = resumed.poll()
    assert outcome.state == "completed" and len(outcome.curve) == 4
    assert outcome.curve[-1][0] == config(1).total_train_tokens
    assert ledger_view(resumed) == server_view(resumed)


def test_409_after_a_retried_post_is_fetched(server, tmp_path):
    standin, url = server
    standin.fail_next = 1
    oracle = open_oracle(url, tmp_path / "ledger.sqlite")
    oracle.submit(config(2))
    assert standin.submits == 2 and len(standin.rows) == 1
    (row,) = oracle.ledger.entries()
    assert row.experiment_id == standin.rows[0]["id"] and row.state != "recorded"


def test_budget_guard_refusal_and_charges(server, tmp_path):
    standin, url = server
    oracle = open_oracle(url, tmp_path / "ledger.sqlite", budget=900.0)
    standin.time_scale = 1e-3  # the run stays active
    oracle.submit(config(3, reserve=400.0))
    assert oracle.budget_committed() == 400.0  # the reservation, while active
    with pytest.raises(BudgetExceededError):
        oracle.submit(config(4, reserve=600.0))  # local guard: 400 + 600 > 900
    assert standin.submits == 1
    standin.time_scale = 1e5
    settle(oracle)
    (done,) = oracle.outcomes()
    assert oracle.budget_committed() == pytest.approx(min(max(1.0, done.runtime_seconds), 400))
    # the server refuses (400) when its own remaining budget is short: the row is refused
    other = open_oracle(url, tmp_path / "other.sqlite", budget=5000.0)
    with pytest.raises(BudgetExceededError):
        other.submit(config(5, reserve=999.0))
    assert [s.state for s in other.ledger.entries()] == ["refused"]
    assert other.budget_committed() == 0.0


def test_ledger_never_moves_backwards(server, tmp_path):
    standin, url = server
    oracle = open_oracle(url, tmp_path / "ledger.sqlite")
    oracle.submit(config(6))
    settle(oracle)
    experiment = oracle.client.experiments()[0]
    assert experiment.status.status_type == "completed"
    stale = experiment.model_dump(mode="json")
    stale["status"] = {"status_type": "queued", "queued_at": "2026-01-01T00:00:00Z"}
    queued = ExperimentResponse.model_validate(stale)
    _, changed = oracle.ledger.attach(queued, note="stale")
    assert not changed and oracle.ledger.entries()[0].state == "completed"

"""A bad answer (NaN, inf, a negative loss) is charged, kept as a failed query, never fitted,
never bought again; the loop finishes and resumes around it, in-process and served."""

from __future__ import annotations

import math
import sqlite3

import jax
import pytest
from fastapi import Request

from bayes_scaling.api.client import TrainingApiClient
from bayes_scaling.api.ledger import Ledger
from bayes_scaling.api.oracle import open_oracle
from bayes_scaling.candidates import CandidateConfig
from bayes_scaling.errors import FailedQueryError
from bayes_scaling.loop import LoopConfig, run_loop
from bayes_scaling.simulator import server as server_module
from bayes_scaling.simulator.server import create_app
from bayes_scaling.simulator.store import RunStore
from bayes_scaling.simulator.truth import Truth, observed_loss
from budget_worker import configs
from live_server import serve_in_thread
from test_loop import fake_backend

KEY = "failed-key"
BAD = (float("nan"), -5.0, float("inf"))


class BadAnswers:
    """A backend whose first three distinct queries answer NaN, -5 and inf."""

    def __init__(self):
        self.calls = 0
        self.spent = 0.0

    def loss(self, config):
        self.calls += 1
        self.spent += config.train_flops
        value = BAD[self.calls - 1] if self.calls <= len(BAD) else 3.5
        return value, self.spent

    def total_flops_used(self):
        return self.spent

    def previous_runs(self):
        return []


def test_ledger_keeps_failed_queries_apart(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger:
        for config, value in zip(configs(), BAD, strict=False):
            assert ledger.record(config, value, None)
        assert ledger.record(configs()[3], 4.0, None)
        assert not ledger.record(configs()[0], float("nan"), None)  # a repeat, not a conflict
    with Ledger(path) as ledger:
        assert len(ledger) == 4 and ledger.total_flops() == 4e15  # failed ones are charged
        assert [o.config for o in ledger.observations()] == [configs()[3]]
        failures = [e.failure for e in ledger.failed()]
        assert "finite" in failures[0] and "positive" in failures[1] and "finite" in failures[2]
        assert ledger.lookup(configs()[0]) is None and ledger.lookup(configs()[3]) == 4.0


def test_oracle_raises_once_charged_and_never_pays_again(tmp_path, caplog):
    backend = BadAnswers()
    path = tmp_path / "ledger.sqlite"
    with open_oracle(backend, path, 1e16) as oracle:
        for config in configs(3):
            with pytest.raises(FailedQueryError, match="failed query"):
                oracle.query(config)
        assert backend.calls == 3 and oracle.flops_used() == 3e15
        with pytest.raises(FailedQueryError):
            oracle.query(configs()[0])  # free: answered from the ledger
        assert oracle.query(configs()[3]) == 3.5
        assert "recorded as a failed query" in caplog.text
    with open_oracle(backend, path, 1e16) as oracle:  # resume
        with pytest.raises(FailedQueryError):
            oracle.query(configs()[1])
        assert backend.calls == 4 and oracle.failed_queries() == configs(3)


def test_a_ledger_of_the_earlier_schema_is_migrated(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE paid_queries (seq INTEGER PRIMARY KEY AUTOINCREMENT,
              d_model INTEGER NOT NULL, num_layers INTEGER NOT NULL, num_heads INTEGER NOT NULL,
              batch_size INTEGER NOT NULL, learning_rate REAL NOT NULL,
              train_flops INTEGER NOT NULL, loss REAL NOT NULL, total_flops_used REAL,
              recorded_at TEXT NOT NULL, source TEXT NOT NULL);
            INSERT INTO paid_queries VALUES (1, 128, 4, 2, 128, 0.0003, 1000000000000000, 4.25,
              1e15, '2026-01-01', 'query');
        """)
    with Ledger(path) as ledger:
        assert ledger.lookup(configs()[0]) == 4.25
        assert ledger.record(configs()[1], float("nan"), None)
        assert len(ledger.failed()) == 1 and len(ledger.observations()) == 1


def _loop_config():
    return LoopConfig.from_flat(budget_flops=3e17, max_queries=16, num_initial=8,
                      candidates=CandidateConfig(num_random=300, num_focus=100))


def test_loop_finishes_and_resumes_around_bad_answers_in_process(tmp_path):
    backend = BadAnswers()
    path = tmp_path / "ledger.sqlite"
    with open_oracle(backend, path, 3e17) as oracle:
        result = run_loop(jax.random.PRNGKey(0), oracle, _loop_config(), backend=fake_backend())
        failed = oracle.failed_queries()
    assert len(failed) == 3
    assert all(math.isfinite(o.loss) and o.loss > 0 for o in result.observations)
    assert not {c.key() for c in failed} & {
        o.config.key() for o in result.observations}
    calls = backend.calls
    with open_oracle(backend, path, 3e17) as oracle:
        again = run_loop(jax.random.PRNGKey(0), oracle, _loop_config(), backend=fake_backend())
    assert backend.calls == calls  # the resumed loop bought nothing it already had
    assert again.observations == result.observations


@pytest.fixture()
def bad_server(tmp_path, monkeypatch):
    answers: dict[tuple, float] = {}

    def broken(truth, config):
        if config.key() not in answers:
            answers[config.key()] = BAD[len(answers)] if len(answers) < len(BAD) else (
                observed_loss(truth, config))
        return answers[config.key()]

    monkeypatch.setattr(server_module, "observed_loss", broken)
    app = create_app(Truth(), store=RunStore(tmp_path / "api.sqlite3"), allowed_keys=[KEY],
                     budget_flops=2e18)
    statuses: list[int] = []
    loss_requests: list[tuple] = []

    @app.middleware("http")
    async def record(request: Request, call_next):
        response = await call_next(request)
        statuses.append(response.status_code)
        if request.url.path == "/loss":
            loss_requests.append(tuple(sorted(request.query_params.items())))
        return response

    with serve_in_thread(app) as url:
        yield url, statuses, loss_requests


def test_served_nan_minus_five_and_inf_are_failed_queries_and_resume(tmp_path, bad_server):
    url, statuses, loss_requests = bad_server
    path = tmp_path / "ledger.sqlite"
    with TrainingApiClient(url, KEY, max_retries=0) as client:
        with open_oracle(client, path, 3e17, api_key=KEY) as oracle:
            result = run_loop(jax.random.PRNGKey(0), oracle, _loop_config(),
                              backend=fake_backend())
            failed = oracle.failed_queries()
        assert len(failed) == 3 and result.stop_reason
        assert client.total_flops_used() == result.flops_used  # failed queries were charged
        n_requests = len(loss_requests)
        with open_oracle(client, path, 3e17, api_key=KEY) as oracle:  # resume
            again = run_loop(jax.random.PRNGKey(0), oracle, _loop_config(),
                             backend=fake_backend())
            assert oracle.failed_queries() == failed
    assert len(loss_requests) == n_requests == len(set(loss_requests))  # nothing bought twice
    assert again.observations == result.observations
    assert statuses and all(s < 500 for s in statuses)

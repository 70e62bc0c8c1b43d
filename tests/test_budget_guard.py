"""One owner per ledger and a budget no set of threads or processes can spend past."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bayes_scaling.api.client import TrainingApiClient
from bayes_scaling.api.ledger import Ledger
from bayes_scaling.api.oracle import open_oracle
from bayes_scaling.errors import BudgetExceededError, LockedError
from bayes_scaling.simulator.inprocess import SimulatedApi
from bayes_scaling.simulator.server import create_app
from bayes_scaling.simulator.store import RunStore
from bayes_scaling.simulator.truth import Truth
from budget_worker import configs
from live_server import serve_in_thread

WORKER = Path(__file__).with_name("budget_worker.py")
KEY = "guard-key"
N_PROCESSES = 8


class SlowBackend:
    """The in-process simulator with a pause in every paid call (widens any race)."""

    def __init__(self, budget):
        self.inner = SimulatedApi(Truth(), budget)
        self.paid = 0

    def loss(self, config):
        time.sleep(0.05)
        self.paid += 1
        return self.inner.loss(config)

    def total_flops_used(self):
        return 0.0  # like a fresh process: the backend knows nothing of earlier spend

    def previous_runs(self):
        return []


def test_threads_cannot_spend_past_the_budget(tmp_path):
    backend = SlowBackend(1e18)
    oracle = open_oracle(backend, tmp_path / "ledger.sqlite", 2e15)
    oracle.query(configs()[0])  # 1e15 of 2e15 spent: room for exactly one more
    outcomes = []

    def worker(config):
        try:
            oracle.query(config)
            outcomes.append("paid")
        except BudgetExceededError:
            outcomes.append("refused")

    threads = [threading.Thread(target=worker, args=(c,)) for c in configs()[1:]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["paid"] + ["refused"] * (len(threads) - 1)
    assert backend.paid == 2 and oracle.flops_used() == 2e15
    oracle.close()


def test_second_open_of_a_ledger_names_the_holder(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(path):
        with pytest.raises(LockedError, match=rf"process {os.getpid()}\b"):
            Ledger(path)
    with Ledger(path) as again:  # released on close
        assert len(again) == 0


def _race(tmp_path: Path, ledger: Path, budget: float, url: str | None) -> list:
    env = {**os.environ, "BAYES_SCALING_API_KEY": KEY}
    procs = []
    for i in range(N_PROCESSES):
        args = [sys.executable, str(WORKER), str(ledger), str(budget),
                str(tmp_path / f"ready-{i}"), str(tmp_path / "go")] + ([url] if url else [])
        procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=env))
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready-{i}").exists() for i in range(N_PROCESSES)):
        assert time.monotonic() < deadline, "workers did not start"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.05)
    (tmp_path / "go").write_text("go")
    return [(p.wait(timeout=120), *p.communicate()) for p in procs]


def _check_one_ran(results) -> None:
    ran = [r for r in results if r[0] == 0]
    locked = [r for r in results if r[0] == 3]
    assert len(ran) == 1 and len(locked) == N_PROCESSES - 1, results
    assert ran[0][1].strip() == "paid 1"  # 1e15 was left: one query, then refused locally
    holder = re.compile(r"^ledger .* is in use by bayes-scaling process \d+ \(lock .*\); ")
    for _, out, err in locked:
        assert out == "" and len(err.strip().splitlines()) == 1 and holder.match(err), err


def _prefill(ledger: Path, backend, key) -> None:
    with open_oracle(backend, ledger, 2e15, api_key=key) as oracle:
        oracle.query(configs(7)[-1])  # 1e15 of the 2e15 budget spent before the race


def test_eight_processes_on_one_ledger_in_process(tmp_path):
    ledger = tmp_path / "ledger.sqlite"
    _prefill(ledger, SimulatedApi(Truth(), 2e15), None)
    _check_one_ran(_race(tmp_path, ledger, 2e15, None))
    with Ledger(ledger) as done:
        assert done.total_flops() == 2e15 and len(done) == 2


def test_eight_processes_on_one_ledger_served(tmp_path):
    store = RunStore(tmp_path / "api.sqlite3")
    app = create_app(Truth(), store=store, allowed_keys=[KEY], budget_flops=2e18)
    with serve_in_thread(app) as url:
        ledger = tmp_path / "ledger.sqlite"
        with TrainingApiClient(url, KEY) as client:
            _prefill(ledger, client, KEY)
        _check_one_ran(_race(tmp_path, ledger, 2e15, url))
        assert store.total_flops_used(KEY) == 2e15  # the run's budget held on the server too
        with Ledger(ledger) as done:
            assert done.total_flops() == 2e15 and len(done) == 2

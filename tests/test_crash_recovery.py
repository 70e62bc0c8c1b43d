"""A client killed with SIGKILL mid-sequence loses no paid run and pays for nothing twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi import Request

from bayes_scaling.api.client import TrainingApiClient
from bayes_scaling.api.ledger import Ledger
from bayes_scaling.simulator.server import create_app
from bayes_scaling.simulator.store import RunStore
from bayes_scaling.simulator.truth import Truth
from live_server import serve_in_thread
from paid_sequence_worker import sequence

KEY = "crash-test-key"
N = 10
WORKER = Path(__file__).with_name("paid_sequence_worker.py")


def _worker(url: str, ledger: Path, pause: float, crash_after: int = 0) -> subprocess.Popen:
    env = {**os.environ, "BAYES_SCALING_API_KEY": KEY}
    return subprocess.Popen(
        [sys.executable, str(WORKER), url, str(ledger), str(N), str(pause), str(crash_after)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def _ledger_rows(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM paid_queries").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


@pytest.fixture()
def counted_server(tmp_path):
    app = create_app(
        Truth(), store=RunStore(tmp_path / "api.sqlite3"), allowed_keys=[KEY], budget_flops=2e18
    )
    loss_requests: list[str] = []

    @app.middleware("http")
    async def count(request: Request, call_next):
        if request.url.path == "/loss":
            loss_requests.append(str(request.query_params.get("d_model")))
        return await call_next(request)

    with serve_in_thread(app) as url:
        yield url, loss_requests


def _check_invariants(url: str, ledger_path: Path, loss_requests: list[str]) -> None:
    expected = sequence(N)
    with TrainingApiClient(url, KEY) as client:
        runs = client.previous_runs()
        spent = client.total_flops_used()
    with Ledger(ledger_path) as ledger:
        recorded = ledger.observations()
        ledger_total = ledger.total_flops()
    # no paid run lost: the ledger holds exactly the server's runs, with the same losses
    assert {o.config.key(): o.loss for o in recorded} == {o.config.key(): o.loss for o in runs}
    assert {o.config.key() for o in runs} == {c.key() for c in expected}
    # nothing paid twice: spend is the sum over distinct configurations, each requested once
    assert spent == float(sum(c.train_flops for c in expected)) == ledger_total
    assert len(loss_requests) == N


def test_sigkill_mid_sequence_then_resume(tmp_path, counted_server):
    url, loss_requests = counted_server
    ledger_path = tmp_path / "ledger.sqlite3"
    proc = _worker(url, ledger_path, pause=0.1)
    deadline = time.monotonic() + 60
    try:
        while _ledger_rows(ledger_path) < 4:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "worker made no progress"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = _ledger_rows(ledger_path)
    assert 4 <= killed_at < N
    resumed = _worker(url, ledger_path, pause=0.0)
    out, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, err
    assert out.strip() == "done"
    _check_invariants(url, ledger_path, loss_requests)


def test_crash_between_charge_and_ledger_write(tmp_path, counted_server):
    url, loss_requests = counted_server
    ledger_path = tmp_path / "ledger.sqlite3"
    crashed = _worker(url, ledger_path, pause=0.0, crash_after=3)
    crashed.communicate(timeout=60)
    assert crashed.returncode == -signal.SIGKILL
    assert _ledger_rows(ledger_path) == 2  # the third run was charged but not recorded
    assert len(loss_requests) == 3
    resumed = _worker(url, ledger_path, pause=0.0)
    out, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, err
    with Ledger(ledger_path) as ledger:
        sources = [e.source for e in ledger.entries()]
    assert sources[:3] == ["query", "query", "reconciled"]
    assert sources[3:] == ["query"] * (N - 3)
    _check_invariants(url, ledger_path, loss_requests)


def test_typed_errors_end_to_end(counted_server, caplog):
    from bayes_scaling.errors import InvalidApiKeyError

    url, _ = counted_server
    wrong = "wrong-secret-key-42"
    with TrainingApiClient(url, wrong, max_retries=0) as client:
        with pytest.raises(InvalidApiKeyError) as excinfo:
            client.loss(sequence(1)[0])
    assert "Invalid API key provided: ***" in str(excinfo.value)
    assert wrong not in str(excinfo.value) and wrong not in caplog.text

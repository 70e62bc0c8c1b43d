"""SIGKILL the 2026 client at random points of its loop, resume it: nothing paid twice or lost."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bayes_scaling.api2026.client import JobsApiClient
from bayes_scaling.api2026.ledger import Ledger
from bayes_scaling.candidates2026 import training_key
from jobs_standin import StandIn
from live_server import serve_in_thread

KEY = "k1"
WORKER = Path(__file__).with_name("jobs_kill_worker.py")
BUDGET = 2000.0


def start(url, ledger, point="none", n=0):
    env = {**os.environ, "BAYES_SCALING_API_KEY": KEY,
           "PYTHONPATH": os.pathsep.join([str(WORKER.parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, str(WORKER), url, str(ledger), str(BUDGET), point, str(n)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def check(standin, url, ledger_path):
    rows = [r for r in standin.rows if r["key"] == KEY]
    # no configuration submitted twice: every POST created a row (a repeat would be a 409),
    # and no training was bought twice under another reservation
    assert standin.submits == len(rows)
    assert len({training_key(r["config"]) for r in rows}) == len(rows)
    remote = JobsApiClient(url, KEY).experiments()
    ledger = Ledger(ledger_path)
    try:
        mine = {s.unique_id: s for s in ledger.entries() if s.state != "refused"}
        assert {e.training_config.unique_id for e in remote} == set(mine)
        for e in remote:  # ledger equal to GET /experiments, every completed run collected
            row = mine[e.training_config.unique_id]
            assert row.experiment_id == e.experiment_id
            assert row.state == e.status.status_type
            assert row.val_losses == list(getattr(e.status, "val_losses", None) or row.val_losses)
        assert all(s.state in ("completed", "failed") for s in mine.values())
    finally:
        ledger.close()
    assert standin.budget_of(KEY)["used_seconds"] <= BUDGET


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume(tmp_path):
    rng = random.Random(9)
    modes = ["recorded", "sent", "timer"] * 4  # 12 trials
    killed = {"recorded": 0, "sent": 0, "timer": 0}
    for trial, mode in enumerate(modes):
        standin = StandIn(keys=(KEY,), budget=BUDGET * 2, time_scale=800.0)
        ledger = tmp_path / f"ledger{trial}.sqlite"
        with serve_in_thread(standin.app) as url:
            for attempt in range(2):  # killed once, then resumed to the end
                if attempt == 0 and mode != "timer":
                    proc = start(url, ledger, mode, rng.randint(1, 4))
                else:
                    proc = start(url, ledger)
                    if attempt == 0:
                        time.sleep(rng.uniform(2.5, 5.0))  # imports take ~2 s; then mid-loop
                        if proc.poll() is None:
                            proc.send_signal(signal.SIGKILL)
                _, err = proc.communicate(timeout=300)
                if proc.returncode == -signal.SIGKILL:
                    killed[mode] += 1
                    continue
                assert proc.returncode == 0, err[-2000:]
            check(standin, url, ledger)
    assert sum(killed.values()) >= 10
    assert killed["recorded"] >= 2 and killed["sent"] >= 2 and killed["timer"] >= 2

"""`run --api 2026` end to end against `serve --api 2026` started from the CLI (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import requests

from api2026_server import KEYS, headers, start_server, stop_server
from bayes_scaling.api2026.schemas import TrainingConfig
from bayes_scaling.memory2026 import fits_memory

DESIGN_KEYS = {"target_flops", "budget_flops", "flops_used", "n_runs", "strategy", "param_count",
               "n_opt", "d_opt", "loss_opt", "recommended", "posterior", "diagnostics"}
BUDGET = 43200.0


@pytest.mark.slow
def test_run_2026_spends_the_budget_and_submits_the_final_config(tmp_path):
    proc, url = start_server(tmp_path, time_scale=3000.0)
    try:
        out = tmp_path / "run"
        env = {**os.environ, "BAYES_SCALING_API_KEY": KEYS[0]}
        start = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-c", "import sys; from bayes_scaling.cli import main; "
             "sys.exit(main())", "run", "--api-url", url, "--budget", str(BUDGET),
             "--out", str(out), "--final-submit"],  # --api probed; default settings otherwise
            env=env, capture_output=True, text=True, timeout=900,
        )
        wall = time.monotonic() - start
        # Speed is a benchmark's claim, not this test's: the wall time is only reported.
        print(f"run --api 2026 end to end: {wall:.0f} s wall")
        assert result.returncode == 0, result.stderr[-3000:]
        assert KEYS[0] not in result.stdout + result.stderr
        report = json.loads((out / "report.json").read_text())
        assert DESIGN_KEYS <= set(report)
        final = TrainingConfig.model_validate(report["recommended"]["training_config"])
        saved = json.loads((out / "final_training_config.json").read_text())
        assert TrainingConfig.model_validate(saved) == final
        assert final.architecture_config.head_dim in (64, 128)
        assert fits_memory(final)  # the memory guard
        choice = report["target_choice"]
        assert choice["memory_bytes"] <= choice["memory_capacity"]
        assert "memory guard" in (out / "report.md").read_text()
        pred = report["recommended"]["predicted_loss"]
        lo90, lo50, hi50, hi90 = (*pred["ci90"][:1], *pred["ci50"], *pred["ci90"][1:])
        assert lo90 < lo50 < pred["median"] < hi50 < hi90
        for name in ("report.md", "runs.csv", "posterior.nc", "experiments2026.json",
                     "isoflops_predictive.png", "ppc.png", "n_opt.png", "final_submission.json"):
            assert (out / name).is_file(), name
        budget = requests.get(url + "/budget", headers=headers(), timeout=10).json()
        assert budget["used_seconds"] <= BUDGET
        assert budget["used_seconds"] > 0.9 * BUDGET
        experiments = requests.get(url + "/experiments", headers=headers(), timeout=10).json()
        states = [e["status"]["status_type"] for e in experiments]
        assert states and all(s == "completed" for s in states)  # no timeout, nothing left
        assert report["n_timeouts"] == 0
        assert report["loop"]["max_in_flight_seen"] >= 3
        stored = requests.get(url + "/final_submission", headers=headers(), timeout=10).json()
        assert TrainingConfig.model_validate(stored["training_config"]) == final
        assert stored["predicted_final_loss"] == pytest.approx(pred["median"])
        assert report["final_submission"]["predicted_final_loss"] == stored["predicted_final_loss"]
    finally:
        stop_server(proc)

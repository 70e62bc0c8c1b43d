"""`bayes-scaling run` end to end with tiny NUTS, resume after SIGKILL, and the experiments."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bayes_scaling.cli import main

TINY = ["--num-warmup", "10", "--num-samples", "10", "--num-chains", "1"]
REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "bayes-scaling")


def _ledger_rows(path: Path) -> list[tuple]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        rows = []
        for table in tables:
            cols = [r[1] for r in conn.execute(f"pragma table_info({table})")]
            if {"d_model", "train_flops"} <= set(cols):
                rows += conn.execute(
                    f"select d_model, num_layers, num_heads, batch_size, learning_rate, "
                    f"train_flops from {table}"
                ).fetchall()
        return rows


def test_run_writes_every_output(tmp_path):
    out = tmp_path / "run"
    status = main(["run", "--out", str(out), "--budget", "3e17", "--planned-queries", "10",
                   "--max-queries", "20", *TINY])
    assert status == 0
    for name in ("report.json", "report.md", "runs.csv", "posterior.nc", "run_config.json",
                 "ledger.sqlite", "loop_progress.png"):
        assert (out / name).is_file(), name
    assert list(out.glob("*.png"))
    report = json.loads((out / "report.json").read_text())
    for key in ("target_flops", "budget_flops", "flops_used", "n_runs", "strategy",
                "param_count", "n_opt", "d_opt", "loss_opt", "recommended", "posterior",
                "diagnostics"):
        assert key in report, key
    # The run ends by spending the budget (2% may be left), not at the query bound.
    assert report["loop"]["stop_reason"] == "budget spent"
    assert 0.98 * 3e17 <= report["flops_used"] <= 3e17
    assert report["n_runs"] < 20
    assert json.loads((out / "run_config.json").read_text())["planned_queries"] == 10
    assert report["strategy"] == "active"
    assert report["loop"]["timings_seconds"]["fit"] > 0
    assert "regret" in report["evaluation_only"]
    assert report["recommended"]["batch_size"] in (128, 256)
    # The optimal-design yardstick (issue 10).
    assert 0 < report["oracle_sd_ln_n_opt"] and 0 < report["design_efficiency"]
    assert "design efficiency" in (out / "report.md").read_text()


def test_run_rejects_resume_without_saved_settings(tmp_path, capsys):
    assert main(["run", "--resume", str(tmp_path)]) == 2
    assert "run_config.json" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_after_sigkill_does_not_pay_twice(tmp_path):
    out = tmp_path / "run"
    cmd = [CLI, "run", "--budget", "4e17",
           "--max-queries", "14", "--no-figures", *TINY]
    proc = subprocess.Popen([*cmd, "--out", str(out)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and len(_ledger_rows(out / "ledger.sqlite")) < 9:
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _ledger_rows(out / "ledger.sqlite")
    assert 9 <= len(before) < 14
    done = subprocess.run([*cmd, "--resume", str(out)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-2000:]
    after = _ledger_rows(out / "ledger.sqlite")
    assert len(after) == len(set(after)) <= 14
    assert set(before) <= set(after)
    report = json.loads((out / "report.json").read_text())
    assert report["n_runs"] == len(after)
    assert report["flops_used"] == pytest.approx(sum(r[5] for r in after))
    assert report["flops_used"] <= 4e17


@pytest.mark.slow
def test_run_against_a_served_api(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    keys = tmp_path / "keys.txt"
    keys.write_text("test-key\n")
    server = subprocess.Popen(
        [CLI, "serve", "--port", str(port),
         "--keys", str(keys), "--db", str(tmp_path / "server.sqlite")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        import requests

        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{port}/total_flops_used",
                             params={"api_key": "test-key"}, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        env = {**os.environ, "BAYES_SCALING_API_KEY": "test-key"}
        out = tmp_path / "run"
        done = subprocess.run(
            [CLI, "run", "--api-url",
             f"http://127.0.0.1:{port}", "--budget", "2e17", "--max-queries", "6",
             "--no-figures", "--out", str(out), *TINY],
            capture_output=True, text=True, timeout=400, env=env,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        report = json.loads((out / "report.json").read_text())
        assert report["backend"] == "api" and "evaluation_only" not in report
        used = requests.get(f"http://127.0.0.1:{port}/total_flops_used",
                            params={"api_key": "test-key"}, timeout=5).json()
        assert used == pytest.approx(report["flops_used"])
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.mark.slow
def test_experiment_scripts_smoke(tmp_path):
    for script, extra in (("time_split.py", []),
                          ("benchmark_strategies.py", ["--truths", "1", "--seeds", "1"])):
        done = subprocess.run(
            [sys.executable, str(REPO / "experiments" / script), "--tiny",
             "--out", str(tmp_path / f"{script}.md"), *extra],
            capture_output=True, text=True, timeout=600,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert (tmp_path / f"{script}.md").read_text().startswith("#")

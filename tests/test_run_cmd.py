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
                   "--max-queries", "30", *TINY])
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
    assert report["n_runs"] < 30
    saved = json.loads((out / "run_config.json").read_text())
    assert saved["planned_queries"] == 10 and saved["criterion"] == "decision"
    assert report["strategy"] == "active"
    assert report["loop"]["timings_seconds"]["fit"] > 0
    assert "regret" in report["evaluation_only"]
    assert report["recommended"]["batch_size"] in (128, 256)
    gap = report["recommended"]["gap_to_optimum"]  # the loop caps no learning rate
    assert not gap["capped"] and gap["learning_rate_cap"] == 0.0
    assert "nats between the predicted loss" in (out / "report.md").read_text()
    assert "strategy: active (acquisition criterion decision)" in (out / "report.md").read_text()
    # The optimal-design yardstick (issue 10).
    assert 0 < report["oracle_sd_ln_n_opt"] and 0 < report["design_efficiency"]
    assert "design efficiency" in (out / "report.md").read_text()
    assert "the yardstick scores ln N_opt alone" in (out / "report.md").read_text()


def test_run_rejects_resume_without_saved_settings(tmp_path, capsys):
    assert main(["run", "--resume", str(tmp_path)]) == 2
    assert "run_config.json" in capsys.readouterr().err


def test_a_saved_config_without_a_criterion_resumes_with_n_opt(tmp_path):
    """Runs saved before ``decision`` became the default keep the criterion they ran with."""
    from bayes_scaling.cli.run_cmd import _read_saved

    saved = {"budget": 3e17, "target": 1e19, "strategy": "active", "seed": 0}
    (tmp_path / "run_config.json").write_text(json.dumps(saved))
    assert _read_saved(tmp_path)["criterion"] == "n-opt"
    (tmp_path / "run_config.json").write_text(json.dumps({**saved, "criterion": "decision"}))
    assert _read_saved(tmp_path)["criterion"] == "decision"


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [4, 9])
def test_resume_after_sigkill_does_not_pay_twice(tmp_path, kill_after):
    out = tmp_path / "run"
    cmd = [CLI, "run", "--budget", "4e17",
           "--max-queries", "14", "--no-figures", *TINY]
    proc = subprocess.Popen([*cmd, "--out", str(out)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and len(_ledger_rows(out / "ledger.sqlite")) < kill_after:
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _ledger_rows(out / "ledger.sqlite")
    assert kill_after <= len(before) < 14
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
    for script, extra in (("time_split.py", []), ("compilation_cache.py", []),
                          ("benchmark_strategies.py", ["--truths", "1", "--seeds", "1"])):
        done = subprocess.run(
            [sys.executable, str(REPO / "experiments" / script), "--tiny",
             "--out", str(tmp_path / f"{script}.md"), *extra],
            capture_output=True, text=True, timeout=600,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert (tmp_path / f"{script}.md").read_text().startswith("#")


@pytest.mark.slow
def test_eight_resumes_of_one_directory_one_runs(tmp_path):
    out = tmp_path / "run"
    settings = {"api_url": None, "truth": None, "budget": 1.2e16, "target": 1e19,
                "strategy": "active", "seed": 0, "max_queries": 30, "planned_queries": 12,
                "stop_width": 0.0, "num_warmup": 20, "num_samples": 20, "num_chains": 1,
                "no_figures": True}
    out.mkdir()
    (out / "run_config.json").write_text(json.dumps(settings))
    from bayes_scaling.api.oracle import open_oracle
    from bayes_scaling.simulator.inprocess import SimulatedApi
    from bayes_scaling.simulator.truth import Truth
    from budget_worker import configs

    with open_oracle(SimulatedApi(Truth(), 1.2e16), out / "ledger.sqlite", 1.2e16) as oracle:
        for config in configs(6):
            oracle.query(config)  # 6e15 of 1.2e16 spent before the race
    leftover = out / ".report.json.k2j4h_x9.tmp"  # what a write killed half-way leaves
    leftover.write_text("{")
    procs = [subprocess.Popen([CLI, "run", "--resume", str(out)], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    ran = [r for r in results if r[0] == 0]
    locked = [r for r in results if r[0] == 2]
    assert len(ran) == 1 and len(locked) == 7, [(r[0], r[2][-300:]) for r in results]
    for _, stdout, stderr in locked:
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and f"run directory {out} is in use by bayes-scaling process" in (
            lines[0]) and stdout == ""
    rows = _ledger_rows(out / "ledger.sqlite")
    assert len(rows) == len(set(rows))
    report = json.loads((out / "report.json").read_text())
    assert report["flops_used"] == pytest.approx(sum(r[5] for r in rows))
    assert report["flops_used"] <= 1.2e16
    assert not leftover.exists()


@pytest.mark.slow
def test_server_killed_mid_run_then_restarted_and_resumed(tmp_path):
    from live_server import free_port, wait_for_port

    port = free_port()
    keys = tmp_path / "keys.txt"
    keys.write_text("kill-key\n")
    db = tmp_path / "server.sqlite"
    serve = [CLI, "serve", "--port", str(port), "--keys", str(keys), "--db", str(db)]
    env = {**os.environ, "BAYES_SCALING_API_KEY": "kill-key"}
    out = tmp_path / "run"
    run = [CLI, "run", "--api-url", f"http://127.0.0.1:{port}", "--budget", "3e17",
           "--max-queries", "12", "--no-figures", *TINY]
    server = subprocess.Popen(serve, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = None
    try:
        wait_for_port(port, timeout=60, proc=server)
        client = subprocess.Popen([*run, "--out", str(out)], env=env, cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 240
        while len(_ledger_rows(out / "ledger.sqlite")) < 5 and time.time() < deadline:
            assert client.poll() is None, client.communicate()
            time.sleep(0.1)
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
        _, err = client.communicate(timeout=120)
        last = err.strip().splitlines()[-1]
        assert client.returncode == 2 and last.startswith("bayes-scaling run: error: GET "), err
        assert "failed after 5 attempt(s)" in last
        before = _ledger_rows(out / "ledger.sqlite")
        server = subprocess.Popen(serve, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(port, timeout=60, proc=server)
        done = subprocess.run([*run, "--resume", str(out)], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=400)
        assert done.returncode == 0, done.stderr[-2000:]
    finally:
        for proc in (client, server):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    after = _ledger_rows(out / "ledger.sqlite")
    assert set(before) <= set(after) and len(after) == len(set(after)) <= 12
    served = _ledger_rows(db)
    assert sorted(served) == sorted(after)  # nothing lost on either side, nothing paid twice
    report = json.loads((out / "report.json").read_text())
    assert report["flops_used"] == pytest.approx(sum(r[5] for r in after))
    assert report["flops_used"] <= 3e17

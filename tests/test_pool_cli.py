"""`bayes-scaling run --pool`: replay end to end, a planning round and --resume, SIGKILL."""

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bayes_scaling.cli import main
from test_pool import synthetic_pool

TINY = ["--num-warmup", "10", "--num-samples", "10", "--num-chains", "1", "--no-figures"]
CLI = str(Path(sys.executable).parent / "bayes-scaling")


def write_pool(tmp_path, *, planned=0, seed=0):
    n, d, loss = synthetic_pool(8, 6, seed=seed)
    flops = 6 * n * d
    is_target = flops >= np.quantile(flops, 0.85)
    pool_rows = [(a, b, y) for a, b, y, t in zip(n, d, loss, is_target, strict=True) if not t]
    dear = set(np.argsort([6 * a * b for a, b, _ in pool_rows])[len(pool_rows) - planned:]
               ) if planned else set()
    pool = tmp_path / "pool.csv"
    with pool.open("w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["n_params", "n_tokens", "loss"])
        for i, (a, b, y) in enumerate(pool_rows):
            w.writerow([a, b, "" if i in dear else y])
    target = tmp_path / "target.csv"
    with target.open("w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["n_params", "n_tokens", "loss"])
        for a, b, y, t in zip(n, d, loss, is_target, strict=True):
            if t:
                w.writerow([a, b, y])
    hidden = {(repr(float(a)), repr(float(b))): y for a, b, y in pool_rows}
    return pool, target, hidden


def purchases(out: Path) -> list[tuple]:
    path = out / "purchases.sqlite"
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "purchases" not in tables:  # the file exists, its schema not yet
            return []
        return conn.execute("SELECT row_key, loss FROM purchases ORDER BY seq").fetchall()


def test_pool_replay_writes_run_outputs_and_scores(tmp_path, capsys):
    pool, target, _ = write_pool(tmp_path)
    out = tmp_path / "out"
    status = main(["run", "--pool", str(pool), "--target-rows", str(target), "--out", str(out),
                   "--budget-fraction", "0.05", "0.2", "--strategy", "active-region", *TINY])
    assert status == 0
    for name in ("report.json", "report.md", "runs.csv", "posterior.nc", "pool_scores.csv",
                 "pool_scores.md", "purchases.sqlite", "pool_config.json"):
        assert (out / name).is_file(), name
    assert not (out / "next_runs.csv").exists()
    report = json.loads((out / "report.json").read_text())
    checkpoints = report["pool"]["checkpoints"]
    assert [c["fraction"] for c in checkpoints] == [0.05, 0.2]
    assert checkpoints[-1]["spent"] <= 0.2 * report["pool"]["total_cost"]
    assert report["strategy"] == "active-region"
    assert report["n_runs"] == checkpoints[-1]["n_bought"] == len(purchases(out))
    assert "R2" in capsys.readouterr().out
    # a pool-only strategy without --pool, and a region strategy without target rows, are errors
    assert main(["run", "--strategy", "v-opt", "--out", str(tmp_path / "x")]) == 2
    assert main(["run", "--pool", str(pool), "--target", "1e21", "--strategy", "v-opt",
                 "--out", str(tmp_path / "y")]) == 2


def test_pool_planning_round_then_resume(tmp_path, capsys):
    pool, target, hidden = write_pool(tmp_path, planned=15)
    out = tmp_path / "plan"
    args = ["run", "--pool", str(pool), "--target-rows", str(target), "--target", "1e21",
            "--out", str(out), "--budget-fraction", "0.1", "0.4", "--strategy", "active", *TINY]
    assert main(args) == 0
    rounds = 0
    while (out / "next_runs.csv").exists():
        rounds += 1
        assert rounds < 10
        printed = capsys.readouterr().out
        assert "train these" in printed and "--resume" in printed
        with (out / "next_runs.csv").open() as handle:
            planned = list(csv.DictReader(handle))
        assert planned and [int(r["rank"]) for r in planned] == list(range(1, len(planned) + 1))
        # the user trains the planned runs and fills in their losses in the pool file
        with pool.open() as handle:
            rows = list(csv.DictReader(handle))
        wanted = {int(r["pool_row"]) for r in planned}
        for number, row in enumerate(rows, start=2):
            if number in wanted:
                assert row["loss"] == ""
                row["loss"] = hidden[(repr(float(row["n_params"])), repr(float(row["n_tokens"])))]
        with pool.open("w", newline="") as handle:
            w = csv.DictWriter(handle, fieldnames=["n_params", "n_tokens", "loss"])
            w.writeheader()
            w.writerows(rows)
        assert main(["run", "--resume", str(out)]) == 0
    assert rounds >= 1
    report = json.loads((out / "report.json").read_text())
    assert [c["fraction"] for c in report["pool"]["checkpoints"]] == [0.1, 0.4]
    assert "n_opt" in report["pool"]["checkpoints"][-1]
    bought = purchases(out)
    assert len({k for k, _ in bought}) == len(bought) and all(y is not None for _, y in bought)


@pytest.mark.slow
def test_pool_sigkill_then_resume_loses_nothing(tmp_path):
    pool, target, _ = write_pool(tmp_path, seed=1)
    out = tmp_path / "killed"
    cmd = [CLI, "run", "--pool", str(pool), "--target-rows", str(target), "--out", str(out),
           "--budget-fraction", "0.05", "0.1", "0.2", "0.3", "--queries-per-fit", "1",
           "--strategy", "v-opt", *TINY]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=os.environ.copy())
    deadline = time.time() + 240
    before = []
    while time.time() < deadline and proc.poll() is None:
        before = purchases(out)
        if len(before) >= 14:  # the initial design (12) and some picks
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = purchases(out)
    assert len(before) >= 14
    assert main(["run", "--resume", str(out)]) == 0
    after = purchases(out)
    assert after[: len(before)] == before  # nothing lost, nothing rewritten
    keys = [k for k, _ in after]
    assert len(keys) == len(set(keys))  # nothing bought twice
    report = json.loads((out / "report.json").read_text())
    assert report["n_runs"] == len(after)
    assert report["pool"]["checkpoints"][-1]["spent"] <= 0.3 * report["pool"]["total_cost"]

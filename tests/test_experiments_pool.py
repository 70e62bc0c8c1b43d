"""Smoke test of experiments/pool_benchmark.py with tiny settings (numbers are not checked)."""

import json

from test_experiments_model import _load


def test_pool_benchmark_smoke_and_resume(shared_data, tmp_path):
    bench = _load("pool_benchmark")
    out = tmp_path / "pool.md"
    args = ["--data", str(shared_data), "--pools", "chinchilla", "gadre:rpj", "--strategies",
            "cheapest", "v-opt", "all-data", "--seeds", "1", "--executor", "serial", "--tiny",
            "--out", str(out)]
    assert bench.main(args) == 0
    rows_path = out.with_suffix(".rows.jsonl")
    rows = [json.loads(line) for line in rows_path.read_text().splitlines()]
    # 2 pools x (2 strategies x 3 checkpoints + all-data's one)
    assert len(rows) == 2 * (2 * 3 + 1)
    assert {r["pool"] for r in rows} == {"chinchilla", "gadre:rpj"}
    chinchilla = [r for r in rows if r["pool"] == "chinchilla"]
    assert {r["pool_rows"] for r in chinchilla} == {196}  # 245 rows, top 20% are the target
    assert {r["n_target"] for r in chinchilla} == {49}
    table = out.read_text()
    assert "## chinchilla" in table and "Issue 8 target on Chinchilla" in table
    assert "Scale run: 3 of the full run's 70 cells" in table  # 3 strategies x 1 seed
    # A second start finds every cell done and runs nothing.
    assert bench.main(args) == 0
    assert len(rows_path.read_text().splitlines()) == len(rows)
    # An ablation lands in the same rows file under its own label, beside the strategy.
    assert bench.main([*args[:4], "--strategies", "v-opt", "--variant", "law-only",
                       *args[args.index("--seeds"):]]) == 0
    labels = {json.loads(line)["strategy"] for line in rows_path.read_text().splitlines()}
    assert {"v-opt", "v-opt (law only)"} <= labels
    assert bench.main([*args, "--report-only"]) == 0
    assert "| v-opt (law only) | 10% |" in out.read_text()


def test_rows_of_another_model_are_dropped_and_rerun(tmp_path):
    bench = _load("pool_benchmark")
    revision = bench.model_revision()
    assert revision != "unknown"  # the tests run in a git checkout
    rows_path = tmp_path / "pool.rows.jsonl"
    cell = {"pool": "chinchilla", "strategy": "random", "seed": 0, "fraction": 0.01}
    rows_path.write_text(json.dumps({**cell, "model_revision": "0000000"}) + "\n"
                         + json.dumps({**cell, "seed": 1, "model_revision": revision}) + "\n")
    assert set(bench._finished(rows_path, revision)) == {"chinchilla|random|1"}
    assert len(bench._finished(rows_path)) == 2
    assert bench.drop_stale_rows(rows_path, revision) == 1
    assert [json.loads(line)["seed"] for line in rows_path.read_text().splitlines()] == [1]
    assert bench.drop_stale_rows(rows_path, revision) == 0


def test_model_revision_is_the_last_commit_of_the_model_files(tmp_path):
    import subprocess

    bench = _load("pool_benchmark")
    assert bench.model_revision(tmp_path) == "unknown"  # not a git checkout
    last = subprocess.run(["git", "-C", str(bench.ROOT), "log", "-1", "--format=%h", "--",
                           *bench.MODEL_FILES], capture_output=True, text=True).stdout.strip()
    assert bench.model_revision().removesuffix("+dirty") == last

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
    # A second start finds every cell done and runs nothing.
    assert bench.main(args) == 0
    assert len(rows_path.read_text().splitlines()) == len(rows)

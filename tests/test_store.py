from __future__ import annotations

import math
import sqlite3
from pathlib import Path

from bayes_scaling.simulator.store import RunStore, key_digest
from bayes_scaling.space import RunConfig


def _config(flops: int = 10**15, lr: float = 5e-4) -> RunConfig:
    return RunConfig(
        d_model=256, num_layers=4, num_heads=4, batch_size=128, learning_rate=lr, train_flops=flops
    )


def test_charge_repeat_and_refusal():
    store = RunStore(":memory:")
    first = store.charge("k", _config(), 4.2, budget_flops=2e15)
    assert first.accepted and not first.repeat
    assert first.charged == 10**15 and first.total_flops_used == 1e15
    again = store.charge("k", _config(), 9.9, budget_flops=2e15)
    assert again.accepted and again.repeat and again.charged == 0
    assert again.loss == 4.2 and again.total_flops_used == 1e15
    exact = store.charge("k", _config(lr=6e-4), 4.1, budget_flops=2e15)
    assert exact.accepted and exact.total_flops_used == 2e15  # spend == budget is allowed
    refused = store.charge("k", _config(flops=10**13), 4.0, budget_flops=2e15)
    assert not refused.accepted and refused.loss is None and refused.charged == 0
    assert store.total_flops_used("k") == 2e15
    assert len(store.previous_runs("k")) == 2
    # other keys have their own budget and runs
    assert store.total_flops_used("other") == 0.0
    assert store.previous_runs("other") == []
    assert store.charge("other", _config(flops=10**13), 4.0, budget_flops=2e15).accepted


def test_runs_and_spend_survive_reopen(tmp_path):
    path = tmp_path / "api.sqlite3"
    key = "k-very-secret"
    with RunStore(path) as store:
        store.charge(key, _config(), 4.2, budget_flops=2e18)
        store.charge(key, _config(lr=1e-4), 4.5, budget_flops=2e18)
    with RunStore(path) as store:
        assert store.total_flops_used(key) == 2e15
        runs = store.previous_runs(key)
        assert [r["learning_rate"] for r in runs] == [5e-4, 1e-4]
        assert runs[0] == {
            "d_model": 256, "num_layers": 4, "num_heads": 4, "batch_size": 128,
            "learning_rate": 5e-4, "train_flops": 10**15, "loss": 4.2,
        }
        assert store.charge(key, _config(), 0.0, budget_flops=2e18).loss == 4.2
    # the key itself is never written to the file, only its salted digest
    with sqlite3.connect(path) as conn:
        digests = {row[0] for row in conn.execute("SELECT key_digest FROM runs")}
        salt = conn.execute("SELECT value FROM store_meta WHERE name = 'key_salt'").fetchone()[0]
    assert len(salt) == 32 and digests == {key_digest(key, salt)}
    assert key_digest(key) not in digests  # not the unsalted SHA-256
    assert key.encode() not in path.read_bytes()
    # a second database salts differently: equal keys do not match across files
    with RunStore(tmp_path / "other.sqlite3") as other:
        other.charge(key, _config(), 4.2, budget_flops=2e18)
    with sqlite3.connect(tmp_path / "other.sqlite3") as conn:
        assert {r[0] for r in conn.execute("SELECT key_digest FROM runs")}.isdisjoint(digests)


def test_closed_store_is_one_self_contained_file(tmp_path):
    path = tmp_path / "api.sqlite3"
    store = RunStore(path)
    store.charge("k", _config(), 4.2, budget_flops=2e18)
    assert Path(f"{path}-wal").exists()
    store.close()
    assert not Path(f"{path}-wal").exists()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


def test_non_finite_loss_is_stored_as_null_and_read_back_as_nan(tmp_path):
    with RunStore(tmp_path / "api.sqlite3") as store:
        first = store.charge("k", _config(), float("nan"), budget_flops=2e18)
        assert first.accepted and math.isnan(first.loss) and first.charged == 10**15
        assert math.isnan(store.charge("k", _config(), 4.0, budget_flops=2e18).loss)
        assert math.isnan(store.previous_runs("k")[0]["loss"])

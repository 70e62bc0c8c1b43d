"""`run --resume` continues exactly the run that was started, or refuses, paying nothing."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from bayes_scaling.api.client import TrainingApiClient
from bayes_scaling.api.ledger import Ledger
from bayes_scaling.api.oracle import open_oracle
from bayes_scaling.cli import build_parser, main, run_cmd
from bayes_scaling.rundir import RUN_LOCK_NAME, ExclusiveLock
from bayes_scaling.simulator.inprocess import SimulatedApi
from bayes_scaling.simulator.server import create_app
from bayes_scaling.simulator.store import RunStore
from bayes_scaling.simulator.truth import Truth
from budget_worker import configs
from live_server import serve_in_thread

SAVED = {**run_cmd.DEFAULTS, "budget": 3e17, "seed": 3, "max_queries": 20,
         "num_warmup": 10, "num_samples": 10, "num_chains": 1}


def _started_run(directory: Path, settings: dict, backend, api_key=None) -> Path:
    directory.mkdir()
    (directory / "run_config.json").write_text(json.dumps(settings))
    with open_oracle(backend, directory / "ledger.sqlite", settings["budget"],
                     api_key=api_key) as oracle:
        for config in configs(2):
            oracle.query(config)
    return directory


def _state(run: Path) -> tuple:
    with Ledger(run / "ledger.sqlite") as ledger:
        rows = [(e.config, e.loss) for e in ledger.entries()]
    return rows, (run / "run_config.json").read_text()


@pytest.fixture()
def run_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return _started_run(tmp_path / "run", SAVED, SimulatedApi(Truth(), 3e17))


CONFLICTS = [
    (["--budget", "4e17"], "--budget 4e+17 (saved: 3e+17)"),
    (["--target", "2e19"], "--target 2e+19 (saved: 1e+19)"),
    (["--strategy", "random"], "--strategy random (saved: active)"),
    (["--seed", "4"], "--seed 4 (saved: 3)"),
    (["--max-queries", "10"], "--max-queries 10 (saved: 20)"),
    (["--planned-queries", "9"], "--planned-queries 9 (saved: 40)"),
    (["--stop-width", "0.5"], "--stop-width 0.5 (saved: 0.0)"),
    (["--truth", "TRUTH"], "(saved: None)"),
    (["--api-url", "http://127.0.0.1:9"], "--api-url http://127.0.0.1:9 (saved: None)"),
    (["--num-warmup", "50"], "--num-warmup 50 (saved: 10)"),
    (["--out", "elsewhere"], "--out elsewhere (the run is in"),
]


@pytest.mark.parametrize("flags, listed", CONFLICTS, ids=[c[0][0] for c in CONFLICTS])
def test_each_conflicting_flag_is_refused_and_nothing_is_paid(run_dir, capsys, flags, listed):
    if flags[0] == "--truth":
        (run_dir.parent / "t.json").write_text('{"E": 1.7}')
        flags = ["--truth", str(run_dir.parent / "t.json")]
    before = _state(run_dir)
    assert main(["run", "--resume", str(run_dir), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing flags that differ from the run's saved settings" in err[0]
    assert listed in err[0]
    assert _state(run_dir) == before


def test_several_conflicts_are_listed_together(run_dir, capsys):
    assert main(["run", "--resume", str(run_dir), "--budget", "1e18", "--seed", "9",
                 "--max-queries", "30"]) == 2
    err = capsys.readouterr().err
    assert "--budget 1e+18 (saved: 3e+17); --seed 9 (saved: 3)" in err
    assert "--max-queries" not in err  # a larger bound is safe


def test_safe_flags_are_applied_and_matching_flags_accepted(run_dir):
    args = build_parser().parse_args(["run", "--resume", str(run_dir), "--max-queries", "30",
                                      "--no-figures", "--budget", "3e17", "--seed", "3"])
    settings, out, changes = run_cmd._resume_settings(args)
    assert changes == {"max_queries": 30, "no_figures": True}
    assert settings["max_queries"] == 30 and settings["budget"] == 3e17 and out == run_dir


def test_a_resume_while_another_process_owns_the_directory_is_refused(run_dir, capsys):
    before = _state(run_dir)
    with ExclusiveLock(run_dir / RUN_LOCK_NAME):
        start = time.monotonic()
        assert main(["run", "--resume", str(run_dir)]) == 2
        assert time.monotonic() - start < 30
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert f"run directory {run_dir} is in use by bayes-scaling process {os.getpid()}" in err
    assert _state(run_dir) == before


def test_a_new_run_into_a_started_directory_is_refused(run_dir, capsys):
    assert main(["run", "--out", str(run_dir)]) == 2
    assert f"already holds a run (run_config.json); continue it with --resume {run_dir}" in (
        capsys.readouterr().err)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"budget": -1, "target": 1e19, '
                                  '"strategy": "active"}', "\udcff"])
def test_a_corrupt_run_config_is_one_line(run_dir, capsys, text):
    (run_dir / "run_config.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    assert main(["run", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "run_config.json" in err


KEY_A, KEY_B = "key-of-alice", "key-of-bob"


@pytest.fixture()
def served_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = RunStore(tmp_path / "api.sqlite3")
    app = create_app(Truth(), store=store, allowed_keys=[KEY_A, KEY_B], budget_flops=2e18)
    with serve_in_thread(app) as url:
        yield url, store, tmp_path


def test_resume_with_another_key_is_refused_and_nothing_is_paid(served_run, capsys,
                                                               monkeypatch):
    url, store, tmp_path = served_run
    with TrainingApiClient(url, KEY_A) as client:
        run = _started_run(tmp_path / "run", {**SAVED, "api_url": url}, client, api_key=KEY_A)
    before = _state(run)
    monkeypatch.setenv("BAYES_SCALING_API_KEY", KEY_B)
    assert main(["run", "--resume", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "started with another API key" in err
    assert KEY_A not in err and KEY_B not in err
    assert store.total_flops_used(KEY_B) == 0 and store.total_flops_used(KEY_A) == 2e15
    assert _state(run) == before
    assert KEY_A.encode() not in (run / "ledger.sqlite").read_bytes()


def test_a_ledger_holding_another_keys_runs_is_refused(served_run, capsys, monkeypatch):
    url, store, tmp_path = served_run
    with TrainingApiClient(url, KEY_A) as client:  # an older ledger, not tied to a key
        run = _started_run(tmp_path / "run", {**SAVED, "api_url": url}, client)
    monkeypatch.setenv("BAYES_SCALING_API_KEY", KEY_B)
    assert main(["run", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "2 of its 2 run(s) are not runs of this API key" in err
    assert store.total_flops_used(KEY_B) == 0

"""Every bad input of issues 11 and 12 (their *Why*): one line, exit 2, within 30 s, no output.

Each case runs the real command in a fresh working folder; the inputs live in a sibling folder,
so "no output created" means the working folder is still empty afterwards.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from pathlib import Path

import pytest

from bayes_scaling.cli import main

API_ROW = dict(d_model=256, num_layers=4, num_heads=4, batch_size=128, learning_rate=5e-4,
               train_flops=10**15, loss=4.2)
TINY = ["--num-warmup", "5", "--num-samples", "5", "--num-chains", "1"]


def _rows(n: int) -> list[dict]:
    return [{**API_ROW, "d_model": 128 + 64 * i, "train_flops": (10**15, 3 * 10**15)[i % 2],
             "loss": 4.0 - 0.05 * i} for i in range(n)]


def _inputs(root: Path) -> dict[str, str]:
    """Write every input file once; returns name -> path."""
    root.mkdir(exist_ok=True)
    files = {
        "good.json": json.dumps(_rows(8)),
        "no_loss_row2.json": json.dumps([API_ROW, {k: v for k, v in API_ROW.items()
                                                   if k != "loss"}]),
        "digits401.json": '[{"d_model": ' + "9" * 401 + ', "num_layers": 4, "num_heads": 4, '
                          '"batch_size": 128, "learning_rate": 5e-4, "train_flops": 1e15, '
                          '"loss": 4.2}]',
        "digits5000.json": '[{"d_model": ' + "9" * 5000 + "}]",
        "one_run.json": json.dumps([API_ROW]),
        "five_identical.json": json.dumps([API_ROW] * 5),
        "two_of_one.json": json.dumps([API_ROW, {**API_ROW, "loss": 4.3}]),
        "overflow.json": json.dumps([{**API_ROW, "d_model": 10**10, "num_layers": 10**9,
                                      "num_heads": 2}] + _rows(6)),
        "isoflops_bigint.json": '[{"parameters": ' + "9" * 5000 + "}]",
        "isoflops.json": json.dumps([{"parameters": 1e7 * (i + 1), "compute_budget": 1e18,
                                      "final_loss": 3.0 + 0.01 * i} for i in range(5)]),
        "sigma.json": '{"sigma_seed": -0.5}',
        "huge_a.json": '{"A": 1e300, "alpha": -5}',
        "eta0.json": '{"eta0": -1}',
        "unknown.json": '{"Q": 1}',
        "broken.json": "{",
        "garbage.sqlite": "this is not a database " * 100,
        "keys.txt": "k1\n",
        "a_file": "x",
    }
    paths = {}
    for name, text in files.items():
        (root / name).write_text(text)
        paths[name] = str(root / name)
    (root / "latin1.json").write_bytes(b'{"E": 1.8, "\xe9": 1}')
    paths["latin1.json"] = str(root / "latin1.json")
    (root / "a_dir").mkdir(exist_ok=True)
    paths["a_dir"] = str(root / "a_dir")
    return paths


# (id, argv with {name} placeholders for input paths, text the one line must hold)
CASES = [
    # run: flags
    ("run-budget-negative", ["run", "--budget", "-1e17"], "--budget: expected a positive"),
    ("run-budget-inf", ["run", "--budget", "inf"], "--budget: expected a positive finite"),
    ("run-budget-nan", ["run", "--budget", "nan"], "--budget: expected a positive finite"),
    ("run-budget-zero", ["run", "--budget", "0"], "--budget: expected a positive finite"),
    ("run-target-zero", ["run", "--target", "0"], "--target: expected a positive finite"),
    ("run-seed-huge", ["run", "--seed", "99999999999999999999999"], "--seed: expected an int"),
    ("run-seed-negative", ["run", "--seed", "-1"], "--seed: expected an integer in [0,"),
    ("run-planned-zero", ["run", "--planned-queries", "0"], "--planned-queries: expected an"),
    ("run-max-queries-zero", ["run", "--max-queries", "0"], "--max-queries: expected an"),
    ("run-stop-width-negative", ["run", "--stop-width", "-1"], "--stop-width: expected a fin"),
    ("run-chains-zero", ["run", "--num-chains", "0"], "--num-chains: expected an integer"),
    ("run-strategy-bad", ["run", "--strategy", "greedy"], "--strategy: invalid choice"),
    # run: budgets too small for the strategy (refused before any query)
    ("run-isoflop-3e16", ["run", "--strategy", "isoflop-grid", "--budget", "3e16"],
     "the isoflop-grid strategy needs at least 4e+16 FLOPs, got 3e+16"),
    ("run-active-small", ["run", "--budget", "1e15"],
     "the active strategy needs at least 8e+15 FLOPs, got 1e+15"),
    ("run-random-small", ["run", "--strategy", "random", "--budget", "3e14"],
     "the random strategy needs at least 8e+15 FLOPs, got 3e+14"),
    # run: files and sources
    ("run-truth-dir", ["run", "--truth", "{a_dir}"], "expected a truth file, got a directory"),
    ("run-truth-latin1", ["run", "--truth", "{latin1.json}"], "not a UTF-8 text file"),
    ("run-truth-missing", ["run", "--truth", "nope.json"], "no such truth file"),
    ("run-truth-broken", ["run", "--truth", "{broken.json}"], "not valid JSON"),
    ("run-truth-sigma", ["run", "--truth", "{sigma.json}"], "sigma_seed: expected a value in"),
    ("run-truth-huge-a", ["run", "--truth", "{huge_a.json}"], "A: expected a value in"),
    ("run-truth-eta0", ["run", "--truth", "{eta0.json}"], "eta0: expected a value in (0, 1]"),
    ("run-truth-unknown", ["run", "--truth", "{unknown.json}"], "unknown key(s) Q"),
    ("run-no-key", ["run", "--api-url", "http://127.0.0.1:9"], "BAYES_SCALING_API_KEY"),
    ("run-url-scheme", ["run", "--api-url", "ftp://x"], "expected an http:// or https:// URL"),
    ("run-url-and-truth", ["run", "--api-url", "http://x", "--truth", "{sigma.json}"],
     "--truth applies to the in-process simulator"),
    ("run-out-file", ["run", "--out", "{a_file}"], "expected a folder, got an existing file"),
    ("run-resume-missing", ["run", "--resume", "nowhere"], "no such run directory"),
    ("run-resume-empty", ["run", "--resume", "{a_dir}"], "no run_config.json there"),
    # fit
    ("fit-row2-no-loss", ["fit", "{no_loss_row2.json}"], "row 2, column 'loss': missing"),
    ("fit-401-digits", ["fit", "{digits401.json}"], "row 1, column 'd_model': expected a pos"),
    ("fit-5000-digits", ["fit", "{digits5000.json}"], "row 1: not usable JSON"),
    ("fit-out-file", ["fit", "{good.json}", "--out", "{a_file}"], "got an existing file"),
    ("fit-budget-negative", ["fit", "{good.json}", "--budget", "-1"], "--budget: expected a"),
    ("fit-target-zero", ["fit", "{good.json}", "--target", "0"], "--target: expected a pos"),
    ("fit-target-nan", ["fit", "{good.json}", "--target", "nan"], "--target: expected a pos"),
    ("fit-target-inf", ["fit", "{good.json}", "--target", "inf"], "--target: expected a pos"),
    ("fit-one-run", ["fit", "{one_run.json}"], "expected at least 5 runs at distinct"),
    ("fit-five-identical", ["fit", "{five_identical.json}"], "got 1 distinct of 1 run(s)"),
    ("fit-two-of-one", ["fit", "{two_of_one.json}"], "got 1 distinct of 2 run(s)"),
    ("fit-overflow", ["fit", "{overflow.json}"], "expected a model below"),
    ("fit-dir", ["fit", "{a_dir}"], "expected a runs file, got a directory"),
    ("fit-latin1", ["fit", "{latin1.json}"], "not a UTF-8 text file"),
    ("fit-seed-huge", ["fit", "{good.json}", "--seed", "99999999999999999999999"], "--seed:"),
    ("fit-chains-zero", ["fit", "{good.json}", "--num-chains", "0"], "--num-chains: expected"),
    # isoflops
    ("isoflops-predict-zero", ["isoflops", "{isoflops.json}", "--predict-at", "0"],
     "--predict-at: expected a positive finite number"),
    ("isoflops-predict-nan", ["isoflops", "{isoflops.json}", "--predict-at", "nan"],
     "--predict-at: expected a positive finite number"),
    ("isoflops-chains-zero", ["isoflops", "{isoflops.json}", "--num-chains", "0"],
     "--num-chains: expected an integer"),
    ("isoflops-dir", ["isoflops", "{a_dir}"], "got a directory"),
    ("isoflops-latin1", ["isoflops", "{latin1.json}"], "not a JSON file"),
    ("isoflops-bigint", ["isoflops", "{isoflops_bigint.json}"], "not usable JSON"),
    # serve
    ("serve-budget-inf", ["serve", "--budget", "inf"], "--budget: expected a positive finite"),
    ("serve-budget-negative", ["serve", "--budget", "-1e17"], "--budget: expected a positive"),
    ("serve-port", ["serve", "--port", "70000"], "--port: expected an integer in [0, 65535]"),
    ("serve-db-garbage", ["serve", "--port", "0", "--keys", "{keys.txt}", "--db",
                          "{garbage.sqlite}"], "cannot use it as a SQLite database"),
    ("serve-db-dir", ["serve", "--port", "0", "--db", "{a_dir}"], "got a directory"),
    ("serve-demo-key-public", ["serve", "--host", "0.0.0.0", "--port", "0"],
     "refusing to serve the public demo key"),
    ("serve-keys-missing", ["serve", "--keys", "nope.txt"], "no such keys file"),
    ("serve-truth-bad", ["serve", "--truth", "{eta0.json}"], "eta0: expected a value in"),
    # params
    ("params-huge", ["params", "--d-model", "1000000000", "--num-layers", "2", "--num-heads",
                     "2"], "--d-model: expected at most 65536"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return _inputs(tmp_path_factory.mktemp("inputs"))


@pytest.mark.parametrize("argv, needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_creates_nothing(tmp_path, monkeypatch, capsys, inputs,
                                                          argv, needle):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BAYES_SCALING_API_KEY", raising=False)
    argv = [inputs[a[1:-1]] if a.startswith("{") else a for a in argv]
    if argv[0] == "run":
        argv += TINY
    start = time.monotonic()
    status = main(argv)
    elapsed = time.monotonic() - start
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert status == 2, captured
    assert len(lines) == 1, captured.err
    assert needle in lines[0]
    assert lines[0].startswith("bayes-scaling ")
    assert "Traceback" not in captured.err and captured.out == ""
    assert elapsed < 30
    assert list(tmp_path.iterdir()) == []


def test_a_bom_before_the_header_is_accepted(tmp_path):
    from bayes_scaling.runs_io import read_runs

    path = tmp_path / "bom.csv"
    header = ",".join(API_ROW)
    path.write_bytes(b"\xef\xbb\xbf" + (header + "\n" + ",".join(
        str(v) for v in API_ROW.values()) + "\n").encode())
    assert len(read_runs(path)) == 1


def test_serve_on_a_busy_port_fails_before_announcing(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.chdir(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port), "--db", str(tmp_path / "s.sqlite")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"cannot listen on 127.0.0.1:{port}" in err
    assert "listening" not in caplog.text and "listening" not in err


def test_a_full_disk_is_one_line(tmp_path, monkeypatch, capsys):
    import bayes_scaling.files as files

    def full(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(files, "atomic_write_text", full)
    assert main(["run", "--out", str(tmp_path / "r"), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.endswith("r/run_config.json: No space left on device")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_in_a_read_only_folder(tmp_path, capsys):
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert main(["run", "--out", str(locked / "r"), *TINY]) == 2
        assert "is not writable" in capsys.readouterr().err
    finally:
        locked.chmod(0o755)

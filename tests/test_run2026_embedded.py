"""`run --api 2026` without --api-url: the embedded simulator over loopback HTTP, and resume."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

TINY = ["--budget", "4000", "--max-queries", "6", "--planned-queries", "6", "--num-warmup", "10",
        "--num-samples", "10", "--num-chains", "1", "--no-figures", "--target-hours", "2"]


def _cli(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from bayes_scaling.cli import main; sys.exit(main())",
         *args], capture_output=True, text=True, timeout=600, env=env)


def _experiments(db) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM experiments").fetchone()[0]


def test_an_embedded_2026_run_spends_its_budget_offline_and_resumes_without_resubmitting(
        tmp_path, monkeypatch):
    monkeypatch.delenv("BAYES_SCALING_API_KEY", raising=False)  # the embedded key is its own
    out = tmp_path / "run"
    done = _cli("run", "--api", "2026", "--out", str(out), *TINY)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["backend"] == "embedded 2026 simulator (time scale 3000)"
    assert "source: embedded 2026 simulator" in (out / "report.md").read_text()
    law, full = (report["recommended"][k] for k in ("predicted_loss_law_only", "predicted_loss"))
    assert law["ci90"][1] - law["ci90"][0] < full["ci90"][1] - full["ci90"][0]
    assert report["seconds_used"] <= 4000 and report["n_runs"] >= 3
    saved = json.loads((out / "run_config.json").read_text())
    assert saved["api_url"] is None and saved["embedded_time_scale"] == 3000
    rows = json.loads((out / "experiments2026.json").read_text())
    submitted = _experiments(out / "simulator2026.sqlite3")
    assert submitted == len(rows) > 0  # every ledger row reached the served simulator
    again = _cli("run", "--resume", str(out))
    assert again.returncode == 0, again.stderr[-3000:]
    assert _experiments(out / "simulator2026.sqlite3") == submitted  # nothing submitted twice
    assert len(json.loads((out / "experiments2026.json").read_text())) == len(rows)


@pytest.mark.parametrize(("extra", "message"), [
    (["--api-url", "http://127.0.0.1:9", "--truth", "t.json"],
     "--truth applies to the embedded simulator, not --api-url"),
    (["--truth", "no-such-truth.json"], "no-such-truth.json"),
])
def test_bad_embedded_flags_are_refused_in_one_line(tmp_path, extra, message):
    done = _cli("run", "--api", "2026", "--out", str(tmp_path / "run"), *TINY, *extra)
    assert done.returncode != 0 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "run" / "run_config.json").exists()


@pytest.mark.slow
def test_an_embedded_2026_run_killed_mid_way_resumes_without_losing_or_repeating_a_run(tmp_path):
    import signal
    import time

    out = tmp_path / "run"
    args = [sys.executable, "-c", "import sys; from bayes_scaling.cli import main; "
            "sys.exit(main())", "run", "--api", "2026", "--out", str(out), *TINY,
            "--max-queries", "12", "--planned-queries", "12", "--budget", "12000"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    db = out / "simulator2026.sqlite3"
    deadline = time.monotonic() + 300
    while not (db.exists() and _experiments(db) >= 3):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no submissions within 300 s"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    before = _experiments(db)
    again = _cli("run", "--resume", str(out))
    assert again.returncode == 0, again.stderr[-3000:]
    rows = json.loads((out / "experiments2026.json").read_text())
    ids = [r["experiment_id"] for r in rows]
    assert len(ids) == len(set(ids)) == _experiments(db)  # no run lost or repeated
    assert len(ids) > before  # the kill came mid-way: the resumed run submitted more
    assert {r["state"] for r in rows} == {"completed"}
    report = json.loads((out / "report.json").read_text())
    assert report["seconds_used"] <= 12000

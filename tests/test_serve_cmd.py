"""`bayes-scaling serve` as a process: no schema endpoint, and a clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from live_server import free_port, wait_for_port

CLI = str(Path(sys.executable).parent / "bayes-scaling")
QUERY = dict(d_model=256, num_layers=4, num_heads=4, batch_size=128, learning_rate=5e-4,
             train_flops=10**15)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopped_server_leaves_a_self_contained_database(tmp_path, stop):
    keys = tmp_path / "keys.txt"
    keys.write_text("serve-key\n")
    db = tmp_path / "api.sqlite3"
    port = free_port()
    proc = subprocess.Popen([CLI, "serve", "--port", str(port), "--db", str(db), "--keys",
                             str(keys)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_for_port(port, timeout=60, proc=proc)
        url = f"http://127.0.0.1:{port}"
        answer = requests.get(f"{url}/loss", params={**QUERY, "api_key": "serve-key"},
                              timeout=10)
        assert answer.status_code == 200 and answer.json()["total_flops_used"] == 1e15
        for schema in ("/openapi.json", "/docs", "/redoc"):
            assert requests.get(f"{url}{schema}", timeout=10).status_code == 404
        assert Path(f"{db}-wal").exists()  # the run is committed, so far in the WAL
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "listening on http://127.0.0.1" in err and "database closed" in err
    assert not Path(f"{db}-wal").exists() and not Path(f"{db}-shm").exists()
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        assert conn.execute("SELECT COUNT(*), SUM(train_flops) FROM runs").fetchone() == (
            1, 10**15)

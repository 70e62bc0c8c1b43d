"""Start `bayes-scaling serve --api 2026` as a subprocess on a free loopback port (tests only)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from live_server import free_port, wait_for_port

KEYS = ("key-a", "key-b")


def headers(key: str = KEYS[0]) -> dict[str, str]:
    return {"X-API-Key": key}


def start_server(tmp_path: Path, *, time_scale: float, db: Path | None = None, truth=None):
    """Start the CLI server; return ``(process, base_url)`` once it answers."""
    keys = tmp_path / "keys.txt"
    keys.write_text("# test keys\n" + "\n".join(KEYS) + "\n\n")
    port = free_port()
    script = Path(sys.executable).with_name("bayes-scaling")
    entry = [str(script)] if script.exists() else [
        sys.executable, "-c", "import sys; from bayes_scaling.cli import main; sys.exit(main())"
    ]
    argv = [
        *entry,
        "serve", "--api", "2026", "--port", str(port), "--db", str(db or tmp_path / "api.db"),
        "--keys", str(keys), "--time-scale", str(time_scale),
    ]
    if truth is not None:
        argv += ["--truth", str(truth)]
    log = open(tmp_path / f"server-{port}.log", "w")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    proc.log_file = log
    wait_for_port(port, timeout=60, proc=proc)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/budget", timeout=2)
            break
        except requests.ConnectionError:
            time.sleep(0.05)
    return proc, url


def stop_server(proc, *, kill: bool = False) -> None:
    """SIGKILL (a crash) or SIGTERM (a clean stop) the server and reap it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
    proc.log_file.close()


@contextmanager
def server_2026(tmp_path: Path, *, time_scale: float = 1000.0, **kwargs):
    """A running CLI server for the duration of the block; yields its base URL."""
    proc, url = start_server(tmp_path, time_scale=time_scale, **kwargs)
    try:
        yield url
    finally:
        stop_server(proc)


def wait_finished(url: str, experiment_id: int, key: str = KEYS[0], timeout: float = 60.0):
    """Poll until the experiment is completed or failed; return its JSON."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = requests.get(f"{url}/experiment/{experiment_id}", headers=headers(key)).json()
        if body["status"]["status_type"] in ("completed", "failed"):
            return body
        time.sleep(0.02)
    raise TimeoutError(f"experiment {experiment_id} still active after {timeout} s")

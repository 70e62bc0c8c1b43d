"""Real servers on 127.0.0.1 for tests: a uvicorn app in a thread (the package's own
:func:`~bayes_scaling.simulator.embedded.serve_in_thread`), free ports, waiting for ports."""

from __future__ import annotations

import socket
import time

from bayes_scaling.simulator.embedded import serve_in_thread

__all__ = ["free_port", "serve_in_thread", "wait_for_port"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server process exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")

"""A simulated API served from a thread of this process, on a free loopback port.

``run --api 2026`` without ``--api-url`` talks to the simulated 2026 job API this way: the same
HTTP client, ledger and reconciliation as against the course's server, with the simulator's
SQLite file in the run directory, so a run can be killed and resumed like a real one.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["serve_in_thread"]


@contextmanager
def serve_in_thread(app, *, lifespan: str = "off", start_timeout: float = 20.0) -> Iterator[str]:
    """Run the ASGI ``app`` under uvicorn on a free 127.0.0.1 port; yield its base URL.

    ``lifespan="on"`` runs the app's startup and shutdown (the 2026 simulator's dispatcher lives
    there). The server stops when the block ends, however it ends.

    Raises
    ------
    RuntimeError
        If the server has not started within ``start_timeout`` seconds.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan=lifespan)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"uvicorn-{port}")
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError(f"the embedded server on port {port} did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

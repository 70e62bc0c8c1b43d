"""`bayes-scaling serve`: the simulator as an HTTP server with the training API's contract.

Every option, the truth, the keys and the database are checked, and the port is bound, before
"listening on" is logged; a busy port is a one-line error. The public demo key is refused on a
non-loopback interface unless ``--keys`` names the keys. SIGTERM and SIGINT stop the server
gracefully and the database is closed with its WAL checkpointed: the SQLite file is
self-contained afterwards (no ``-wal`` file needed).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import os
import signal
import socket
from pathlib import Path

from bayes_scaling.api.client import KEY_ENV
from bayes_scaling.cli import checks, serve2026_cmd
from bayes_scaling.errors import BayesScalingError, InvalidConfigError
from bayes_scaling.textfile import read_text

__all__ = ["DEFAULT_DEMO_KEY", "KEY_ENV", "load_keys", "register"]

logger = logging.getLogger(__name__)

DEFAULT_DEMO_KEY = "sim-key"

_KEYS_HELP = (
    "allowed API keys, one per line (blank lines and lines starting with # are ignored). "
    f"Without --keys the server accepts exactly one key: the value of ${KEY_ENV} if it is set, "
    f"else the demo key {DEFAULT_DEMO_KEY!r}. The startup log names the source of the keys but "
    "never prints a key other than the demo key."
)


def register(subparsers) -> None:
    """Add the `serve` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        help="run the simulated training API over HTTP",
        description=(
            "Serve the simulator with the training API's contract (GET /loss, "
            "/total_flops_used, /previous_runs). Runs and spend per key live in a SQLite file "
            "and survive restarts. Binds to the loopback interface unless --host says otherwise."
        ),
        epilog=(
            "The key is checked first (422 {\"message\": \"Invalid API key provided: KEY\"}), "
            "then the parameters in the API's order (404 with the API's message), then the "
            "budget (400, nothing charged). Uvicorn's access log is off: query strings carry keys."
        ),
    )
    parser.add_argument(
        "--api", choices=("2025", "2026"), default="2025", help="which API to serve (default 2025)"
    )
    parser.add_argument("--truth", type=Path, default=None, help="truth JSON (default: preset)")
    parser.add_argument("--host", default="127.0.0.1", help="interface (default: 127.0.0.1)")
    parser.add_argument("--port", type=checks.port, default=8000,
                        help="port (default: 8000; 0: any free port)")
    parser.add_argument(
        "--db",
        type=Path,
        default=Path("bayes_scaling_api.sqlite3"),
        help="SQLite file of runs and spend (default: ./bayes_scaling_api.sqlite3)",
    )
    parser.add_argument("--keys", type=Path, default=None, help=_KEYS_HELP)
    parser.add_argument(
        "--budget", type=checks.positive_number, default=2e18,
        help="FLOP budget per key, a positive finite number (default: 2e18)"
    )
    serve2026_cmd.add_arguments(parser)
    parser.set_defaults(handler=_handle)


def load_keys(path: Path | None) -> tuple[frozenset[str], str]:
    """Return the accepted keys and a description of their source that is safe to log.

    Raises
    ------
    BayesScalingError
        If the keys file cannot be read or holds no key.
    """
    if path is not None:
        lines = read_text(path, what="keys file", error=BayesScalingError).splitlines()
        keys = frozenset(
            line.strip() for line in lines if line.strip() and not line.strip().startswith("#")
        )
        if not keys:
            raise BayesScalingError(f"keys file {path} holds no key")
        return keys, f"{len(keys)} key(s) from {path}"
    env_key = os.environ.get(KEY_ENV, "").strip()
    if env_key:
        return frozenset({env_key}), f"1 key from ${KEY_ENV}"
    return frozenset({DEFAULT_DEMO_KEY}), (
        f"the demo key {DEFAULT_DEMO_KEY!r} (no --keys, no ${KEY_ENV})"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` now, so a busy port fails before anything is announced."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InvalidConfigError(f"--host {host}: cannot resolve it ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise BayesScalingError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def _handle(args: argparse.Namespace) -> int:
    import uvicorn

    from bayes_scaling.simulator.server import create_app
    from bayes_scaling.simulator.store import RunStore
    from bayes_scaling.simulator.truth import load_truth

    if args.api == "2026":
        return serve2026_cmd.handle(args)
    truth = load_truth(args.truth)
    keys, source = load_keys(args.keys)
    if not _is_loopback(args.host) and args.keys is None and DEFAULT_DEMO_KEY in keys:
        raise BayesScalingError(
            f"--host {args.host} is not a loopback interface: refusing to serve the public demo "
            f"key {DEFAULT_DEMO_KEY!r}; give the allowed keys with --keys FILE"
        )
    db_path = Path(args.db).resolve()
    if db_path.is_dir():
        raise BayesScalingError(f"--db {args.db}: expected a database file, got a directory")
    if not db_path.parent.is_dir():
        raise BayesScalingError(f"--db {args.db}: no folder {db_path.parent}")
    sock = _bind(args.host, args.port)
    try:
        store = RunStore(db_path)
    except BaseException:
        sock.close()
        raise

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            # uvicorn re-raises a captured SIGTERM/SIGINT after shutting down, which would kill
            # the process before the database is closed; stop gracefully and return instead.
            originals = {sig: signal.signal(sig, self.handle_exit)
                         for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in originals.items():
                    signal.signal(sig, handler)

    try:
        app = create_app(truth, store=store, allowed_keys=keys, budget_flops=args.budget)
        if not _is_loopback(args.host):
            logger.warning("serving on %s, which is not a loopback interface", args.host)
        logger.info("database: %s", db_path)
        logger.info("budget per key: %g FLOPs", args.budget)
        logger.info("truth: %s", args.truth if args.truth else "default preset")
        logger.info("accepting %s", source)
        port = sock.getsockname()[1]
        logger.info("listening on http://%s:%d", args.host, port)
        # No access log: it would write every query string, API keys included.
        server = _Server(uvicorn.Config(app, access_log=False, log_level="warning",
                                        lifespan="off"))
        server.run(sockets=[sock])
    finally:
        store.close()
        sock.close()
    logger.info("stopped; database closed")
    return 0

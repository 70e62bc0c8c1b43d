"""`bayes-scaling serve --api 2026`: the simulated 2026 job API over HTTP.

Registered by :mod:`bayes_scaling.cli.serve_cmd` (``add_arguments``) and dispatched there on
``--api 2026`` (``handle``). Experiments, budgets, final submissions and the simulated clock live
in the SQLite file ``--db`` and survive restarts; ``--time-scale X`` makes X simulated seconds
pass per wall second.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

from bayes_scaling.errors import BayesScalingError

__all__ = ["add_arguments", "handle"]

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the 2026 flags (``--host``, ``--port``, ``--db``, ``--keys``, ``--truth`` are shared)."""
    group = parser.add_argument_group("--api 2026 (the Spring-2026 job API)")
    group.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="simulated seconds per wall second (default 1; 1000 makes a 30-minute run take "
        "1.8 s). --truth takes a 2026 truth JSON (default data/truth2026_default.json's "
        "values); --budget is not used: every key has the course's 43,200 s",
    )


def handle(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    import uvicorn

    from bayes_scaling.cli.serve_cmd import _is_loopback, load_keys
    from bayes_scaling.simulator.server2026 import create_app_2026
    from bayes_scaling.simulator.store2026 import Store2026
    from bayes_scaling.simulator.truth2026 import load_truth_2026

    if not (math.isfinite(args.time_scale) and args.time_scale > 0):
        raise BayesScalingError(f"--time-scale must be a positive number, got {args.time_scale}")
    if not 0 <= args.port <= 65535:
        raise BayesScalingError(f"--port must be in [0, 65535], got {args.port}")
    truth = load_truth_2026(args.truth)
    keys, source = load_keys(args.keys)
    db_path = Path(args.db).resolve()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    store = Store2026(db_path, time_scale=args.time_scale)
    app = create_app_2026(store=store, truth=truth, allowed_keys=keys)
    if not _is_loopback(args.host):
        logger.warning("serving on %s, which is not a loopback interface", args.host)
    logger.info("2026 API; database: %s; time scale: %g", db_path, args.time_scale)
    logger.info("truth: %s", args.truth if args.truth else "default preset")
    logger.info("accepting %s", source)
    logger.info("listening on http://%s:%d", args.host, args.port)
    try:
        uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")
    finally:
        store.close()
    return 0

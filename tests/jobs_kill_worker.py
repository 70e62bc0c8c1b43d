"""A 2026 loop client for the SIGKILL tests: runs (or resumes) the loop on one ledger.

Usage: python jobs_kill_worker.py BASE_URL LEDGER BUDGET POINT N
The key comes from $BAYES_SCALING_API_KEY. With POINT "recorded" (after the ledger write, before
``POST /submit``) or "sent" (after the 200, before the ledger heard back) and N > 0 the process
SIGKILLs itself at the N-th time it passes POINT; POINT "none" runs to the end. The loop uses a
fake posterior (the statistics are not under test here, the durability is).
"""

from __future__ import annotations

import os
import signal
import sys

import jax

from bayes_scaling.api2026.client import JobsApiClient
from bayes_scaling.api2026.jobs_oracle import JobsOracle
from bayes_scaling.api2026.ledger import Ledger
from bayes_scaling.jobs_loop import JobsLoopConfig, run_jobs_loop
from test_jobs_loop import fake_backend


def main(url: str, ledger: str, budget: float, point: str, n: int) -> int:
    seen = {"count": 0}

    def hook(name: str) -> None:
        if name == point:
            seen["count"] += 1
            if seen["count"] == n:
                os.kill(os.getpid(), signal.SIGKILL)

    oracle = JobsOracle(JobsApiClient(url, backoff=0.01), Ledger(ledger), budget, hook=hook)
    oracle.sync()
    oracle.refresh_budget()
    config = JobsLoopConfig(poll_min=0.02, poll_max=0.2, num_candidates=400, num_initial=4,
                            min_completed_to_fit=3, planned_runs=12)
    run_jobs_loop(jax.random.PRNGKey(0), oracle, config, backend=fake_backend())
    oracle.close()
    return 0


if __name__ == "__main__":
    url, ledger, budget, point, n = sys.argv[1:6]
    sys.exit(main(url, ledger, float(budget), point, int(n)))

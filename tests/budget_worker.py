"""A process for the lock and budget tests: opens one ledger, pays 1e15-FLOP queries until refused.

Usage: python budget_worker.py LEDGER BUDGET READY_FILE GO_FILE [BASE_URL]
Without BASE_URL the backend is the in-process simulator (its own store, so only the ledger can
hold the budget); with it, the HTTP client with $BAYES_SCALING_API_KEY. The process writes
READY_FILE once imported, waits for GO_FILE, then opens the ledger, so all workers race for it.
Exit 0 and "paid N" on stdout after paying; exit 3 with the one-line lock message on stderr.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from bayes_scaling.api.oracle import open_oracle
from bayes_scaling.errors import BudgetExceededError, LockedError
from bayes_scaling.space import RunConfig


def configs(n: int = 6) -> list[RunConfig]:
    return [RunConfig(d_model=128 + 64 * i, num_layers=4, num_heads=2, batch_size=128,
                      learning_rate=3e-4, train_flops=10**15) for i in range(n)]


def main() -> int:
    ledger, budget, ready, go, *url = sys.argv[1:]
    if url:
        from bayes_scaling.api.client import TrainingApiClient

        backend = TrainingApiClient(url[0], max_retries=0)
        key = os.environ["BAYES_SCALING_API_KEY"]
    else:
        from bayes_scaling.simulator.inprocess import SimulatedApi
        from bayes_scaling.simulator.truth import Truth

        backend, key = SimulatedApi(Truth(), float(budget)), None
    Path(ready).write_text("ready")
    while not Path(go).exists():
        time.sleep(0.01)
    try:
        oracle = open_oracle(backend, ledger, float(budget), api_key=key)
    except LockedError as exc:
        print(exc, file=sys.stderr)
        return 3
    paid = 0
    with oracle:
        for config in configs():
            try:
                oracle.query(config)
                paid += 1
            except BudgetExceededError:
                pass
        time.sleep(1.0)  # hold the ledger while the others try
    print(f"paid {paid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

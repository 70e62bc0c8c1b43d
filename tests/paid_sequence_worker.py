"""A client process for the crash tests: pays for a fixed sequence of queries through the ledger.

Usage: python paid_sequence_worker.py BASE_URL LEDGER N PAUSE_S CRASH_AFTER_CHARGE
The key comes from $BAYES_SCALING_API_KEY. With CRASH_AFTER_CHARGE = k > 0, the process kills
itself with SIGKILL right after the API charged its k-th query and before the ledger write.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from bayes_scaling.api.client import TrainingApiClient
from bayes_scaling.api.oracle import open_oracle
from bayes_scaling.space import RunConfig


def sequence(n: int) -> list[RunConfig]:
    flops = (10**14, 3 * 10**14, 6 * 10**14, 10**15)
    return [
        RunConfig(
            d_model=64 * (1 + i % 8), num_layers=2 + i // 8, num_heads=2, batch_size=128,
            learning_rate=2e-4, train_flops=flops[i % len(flops)],
        )
        for i in range(n)
    ]


class CrashAfterCharge:
    def __init__(self, inner, crash_after: int):
        self.inner = inner
        self.crash_after = crash_after
        self.calls = 0

    def loss(self, config):
        result = self.inner.loss(config)
        self.calls += 1
        if self.calls == self.crash_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    def total_flops_used(self):
        return self.inner.total_flops_used()

    def previous_runs(self):
        return self.inner.previous_runs()


def main() -> None:
    url, ledger, n, pause, crash_after = sys.argv[1:]
    client = TrainingApiClient(url, timeout=30, max_retries=2, backoff=0.05)
    backend = CrashAfterCharge(client, int(crash_after)) if int(crash_after) > 0 else client
    with open_oracle(backend, ledger, budget_flops=2e18) as oracle:
        for config in sequence(int(n)):
            oracle.query(config)
            time.sleep(float(pause))
    print("done", flush=True)


if __name__ == "__main__":
    main()

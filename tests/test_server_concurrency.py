"""Sixteen clients race for the last FLOPs of a budget against a real uvicorn server."""

from __future__ import annotations

import threading

from bayes_scaling.api.client import TrainingApiClient
from bayes_scaling.errors import BudgetExceededError
from bayes_scaling.simulator.server import create_app
from bayes_scaling.simulator.store import RunStore
from bayes_scaling.simulator.truth import Truth
from bayes_scaling.space import RunConfig
from live_server import serve_in_thread

KEY = "race-key"
N_CLIENTS = 16
FLOPS = (10**15, 3 * 10**15, 6 * 10**14, 3 * 10**14)


def _config(i: int, j: int) -> RunConfig:
    return RunConfig(
        d_model=64 * (1 + i % 8),
        num_layers=2 + j,
        num_heads=2,
        batch_size=128 if i < 8 else 256,
        learning_rate=1e-4 + 1e-5 * i,
        train_flops=FLOPS[(i + j) % len(FLOPS)],
    )


def test_concurrent_clients_cannot_overspend(tmp_path):
    budget = 1.2e16
    store = RunStore(tmp_path / "race.sqlite3")
    app = create_app(Truth(), store=store, allowed_keys=[KEY], budget_flops=budget)
    outcomes: dict[tuple, object] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(N_CLIENTS)

    with serve_in_thread(app) as url:
        def worker(i: int) -> None:
            with TrainingApiClient(url, KEY, timeout=30, max_retries=0) as client:
                barrier.wait()
                for j in range(3):
                    config = _config(i, j)
                    try:
                        result: object = client.loss(config)
                    except BudgetExceededError as exc:
                        result = exc
                    with lock:
                        outcomes[config.key()] = (config, result)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(N_CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)

        with TrainingApiClient(url, KEY) as client:
            total = client.total_flops_used()
            runs = client.previous_runs()

    assert len(outcomes) == N_CLIENTS * 3
    paid = {k: v for k, v in outcomes.items() if not isinstance(v[1], Exception)}
    refused = {k: v for k, v in outcomes.items() if isinstance(v[1], Exception)}
    assert paid and refused  # the race really hit the cap
    # the cap holds exactly
    assert total <= budget
    assert total + min(cfg.train_flops for cfg, _ in refused.values()) > budget
    # every charged query is in /previous_runs, with its loss; nothing else is
    assert {obs.config.key(): obs.loss for obs in runs} == {k: v[1][0] for k, v in paid.items()}
    assert sum(obs.config.train_flops for obs in runs) == total
    # each success reported a running total no larger than the budget
    assert all(v[1][1] <= budget for v in paid.values())
    store.close()

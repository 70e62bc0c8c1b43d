"""Ray, local by default, for the benchmarks' fan-out of independent runs."""

from __future__ import annotations

import os

__all__ = ["init_ray"]


def init_ray(num_cpus: int | None = None, address: str | None = None) -> None:
    """Start (or, with ``address``, join) a Ray cluster for benchmark tasks.

    Without ``address`` it starts its own local cluster (``address="local"``), never another
    user's running one, with ``num_cpus`` task slots, no dashboard and no usage statistics.
    Ray starts its task workers at niceness 15 by default (``worker_niceness``), so on a shared
    machine a benchmark got almost no CPU beside any other job; here workers keep the niceness
    the script was started with (``nice -n 10 python ...`` still lowers them).
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if address:
        ray.init(address=address, log_to_driver=False, ignore_reinit_error=True)
        return
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
             ignore_reinit_error=True, _system_config={"worker_niceness": 0})

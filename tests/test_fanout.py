"""Ray's local cluster for the benchmarks keeps the script's niceness in its workers."""

import os

import pytest

ray = pytest.importorskip("ray")


def test_workers_keep_the_drivers_niceness():
    from bayes_scaling.fanout import init_ray

    init_ray(1)
    try:
        worker_nice = ray.get(ray.remote(lambda: os.nice(0)).remote())
    finally:
        ray.shutdown()
    assert worker_nice == os.nice(0)  # Ray's default would be 15 above the driver

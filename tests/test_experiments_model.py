"""Smoke tests of H3's experiment scripts with tiny settings (numbers are not checked here)."""

import importlib.util
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_epoch_check_smoke(shared_data, tmp_path):
    out = tmp_path / "epoch.md"
    table = _load("epoch_check").main(["--data", str(shared_data), "--warmup", "20",
                                       "--samples", "20", "--chains", "2", "--out", str(out)])
    assert "| alpha |" in table and out.exists()


def test_extrapolation_check_smoke(shared_data, tmp_path):
    out = tmp_path / "extra.md"
    table = _load("extrapolation_check").main(["--data", str(shared_data), "--warmup", "20",
                                               "--samples", "20", "--out", str(out)])
    assert "Chinchilla" in table and "Gadre" in table and "with discrepancy" in table
    assert out.exists()


@pytest.mark.slow
def test_simulated_coverage_smoke(tmp_path):
    out = tmp_path / "cov.md"
    table = _load("simulated_coverage").main(["--seeds", "1", "--warmup", "20", "--samples",
                                              "20", "--out", str(out)])
    assert "N_opt(1e19) 90% coverage" in table and out.exists()


@pytest.mark.slow
def test_refit_benchmark_smoke(tmp_path):
    out = tmp_path / "bench.md"
    table = _load("refit_benchmark").main(["--sizes", "10", "--repeats", "1", "--warmup", "20",
                                           "--samples", "20", "--out", str(out)])
    assert "| 10 |" in table and out.exists()

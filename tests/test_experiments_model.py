"""Smoke tests of H3's experiment scripts with tiny settings, and the calibration's math."""

import json

import numpy as np
import pytest

from experiment_scripts import load_script as _load


def test_epoch_check_smoke(shared_data, tmp_path):
    out = tmp_path / "epoch.md"
    table = _load("epoch_check").main(["--data", str(shared_data), "--warmup", "20",
                                       "--samples", "20", "--chains", "2", "--out", str(out)])
    assert "| alpha |" in table and out.exists()


def test_extrapolation_check_and_calibration_smoke(shared_data, tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "extra.md"
    common = ["--data", str(shared_data), "--tiny", "--splits", "gadre-c4,porian-cosine",
              "--cache", str(cache)]
    table = _load("extrapolation_check").main([*common, "--out", str(out)])
    for method in ("| Bayes |", "| Approach 3 |", "| IsoFLOP |"):
        assert method in table
    assert "Porian cosine, N_opt 90% covers the held-out vertex" in table
    results = json.loads(out.with_suffix(".json").read_text())
    assert set(results) == {"gadre-c4", "porian-cosine"}
    assert len(results["porian-cosine"]["Bayes"]["optima"]) == 4  # 3.2e18 ... 2.56e19
    cached = sorted(p.name for p in cache.iterdir())
    # the calibration reuses the cached fits (no new ones) and writes its choice
    cal = tmp_path / "cal.md"
    text = _load("calibrate_discrepancy").main([*common, "--out", str(cal)])
    assert sorted(p.name for p in cache.iterdir()) == cached
    choice = json.loads(cal.with_suffix(".json").read_text())
    assert {f["held_out"] for f in choice["lodo"]} == {"gadre", "porian"}
    assert f"tau_median = {choice['tau_median']:g}" in text


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


def test_discrepancy_calibration_likelihood_and_hierarchy():
    from scipy.stats import multivariate_normal

    cal = _load("calibrate_discrepancy")
    r, v, g = np.array([-0.02, -0.05, 0.01]), np.array([0.01, 0.02, 0.015]), np.array([0.5, 2, 1])
    ll = cal.split_log_likelihood(r, v, g)
    for i in (0, 180, 300):  # the rank-one formula equals the dense multivariate normal
        tau = np.exp(cal.LOG_TAU[i])
        cov = np.diag(v ** 2) + tau ** 2 * np.outer(g, g)
        assert ll[i] == pytest.approx(multivariate_normal(np.zeros(3), cov).logpdf(r), rel=1e-9)
    # data sets that each need a clear, different tau: the predictive median lies between them
    # and its log-sd carries their spread
    peaks = {k: -0.5 * ((cal.LOG_TAU - np.log(t)) / 0.1) ** 2
             for k, t in (("a", 0.005), ("b", 0.02), ("c", 0.08))}
    spread = cal.hierarchical_prior(peaks)
    assert 0.01 < spread["tau_median"] < 0.04 and spread["tau_log_sd"] > 0.9
    same = cal.hierarchical_prior({k: -0.5 * ((cal.LOG_TAU - np.log(0.02)) / 0.1) ** 2
                                   for k in "abc"})
    assert same["tau_median"] == pytest.approx(0.02, rel=0.1)
    assert same["tau_log_sd"] < spread["tau_log_sd"] / 2

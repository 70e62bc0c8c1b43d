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
    assert {"mean_residual", "below_zero", "drift_per_nat"} <= set(choice["per_split"]["gadre-c4"])
    # the exponent calibration fits all rows of each split; the lodo check then fits each
    # split under the prior learnt without its data set (new fits, cached under that prior)
    exp = tmp_path / "exp.md"
    _load("calibrate_exponents").main(["--data", str(shared_data), "--tiny", "--splits",
                                       "gadre-c4,porian-cosine", "--cache",
                                       str(tmp_path / "exp_cache"), "--out", str(exp)])
    learnt = json.loads(exp.with_suffix(".json").read_text())
    assert set(learnt["lodo_fields"]) == {"gadre", "porian"}
    assert learnt["lodo_fields"]["gadre"] != learnt["lodo_fields"]["porian"]
    lodo = tmp_path / "lodo.md"
    table = _load("extrapolation_check").main([*common, "--exponent-prior", "lodo",
                                               "--exponent-calibration",
                                               str(exp.with_suffix(".json")), "--out",
                                               str(lodo)])
    assert "leave-one-dataset-out" in table
    assert len(set(cache.iterdir()) - {cache / name for name in cached}) == 2


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


def test_discrepancy_drift_is_the_signed_residuals_slope_on_u():
    cal = _load("calibrate_discrepancy")
    u = np.array([1.0, 2.0, 3.0])
    drift = cal._drift({"residual": -0.01 * u + np.array([0.002, -0.001, 0.0]), "u": u})
    # slope through the origin: sum(r u) / sum(u^2) = (-0.14 + 0.002 - 0.002) / 14
    assert drift["drift_per_nat"] == pytest.approx(-0.01)
    assert drift["mean_residual"] == pytest.approx(-0.0197, abs=1e-4)
    assert drift["below_zero"] == 3


def test_drift_learnt_without_a_data_set_is_the_others_mean_slope():
    cal = _load("calibrate_discrepancy")
    u = np.array([1.0, 2.0])
    parts = {"a1": {"residual": -0.02 * u, "u": u}, "a2": {"residual": -0.02 * u, "u": u},
             "b": {"residual": 0.01 * u, "u": u}, "c": {"residual": -0.04 * u, "u": u}}
    out = {d["dataset"]: d for d in cal.drift_lodo(parts, {"a1": "a", "a2": "a", "b": "b",
                                                            "c": "c"})}
    assert out["a"]["own_drift"] == pytest.approx(-0.02)  # its two splits pooled
    assert out["a"]["drift_without_it"] == pytest.approx(-0.015)  # (0.01 - 0.04) / 2
    assert out["c"]["drift_without_it"] == pytest.approx(-0.005)  # (-0.02 + 0.01) / 2
    # a's residuals -0.02, -0.04 (median abs 0.03) less -0.015 u: -0.005, -0.01
    assert out["a"]["median_abs_residual"] == pytest.approx(0.03)
    assert out["a"]["median_abs_residual_corrected"] == pytest.approx(0.0075)


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


def test_exponent_hierarchy_pools_agreeing_data_sets_and_widens_for_disagreeing_ones():
    cal = _load("calibrate_exponents")
    same = cal.hierarchical_normal([0.3, 0.31, 0.29, 0.3], [0.02] * 4)
    assert same["mean"] == pytest.approx(0.3, abs=0.01) and same["sd"] < 0.06
    spread = cal.hierarchical_normal([0.15, 0.3, 0.45, 0.6], [0.02] * 4)
    assert spread["mean"] == pytest.approx(0.375, abs=0.02)
    assert spread["sd"] > 0.15 and spread["group_sd"] > 3 * same["group_sd"]
    # a group known poorly counts less
    weak = cal.hierarchical_normal([0.3, 0.3, 0.3, 0.9], [0.02, 0.02, 0.02, 0.5])
    assert weak["mean"] < 0.4


def test_exponent_calibration_leaves_each_data_set_out():
    cal = _load("calibrate_exponents")
    datasets = {k: {"alpha": {"y": y, "se": 0.01}, "beta": {"y": y + 0.1, "se": 0.01}}
                for k, y in (("a", 0.2), ("b", 0.3), ("c", 0.4), ("odd", 0.9))}
    without_odd = cal.priors(datasets, without="odd")
    assert without_odd["alpha"]["mean"] == pytest.approx(0.3, abs=0.02)
    assert without_odd["beta"]["mean"] == pytest.approx(0.4, abs=0.02)
    assert cal.priors(datasets)["alpha"]["mean"] > without_odd["alpha"]["mean"] + 0.05
    fields = cal.prior_fields(without_odd)
    assert set(fields) == {"alpha_mean", "alpha_sd", "beta_mean", "beta_sd"}

"""Smoke tests of the optimum-loss diagnosis scripts (tiny NUTS) and their row selection."""

import json

import numpy as np
import pytest

from experiment_scripts import load_script as _load


def test_optimum_loss_diagnosis_smoke(shared_data, tmp_path):
    out = tmp_path / "diag.md"
    table = _load("optimum_loss_diagnosis").main([
        "--data", str(shared_data), "--tiny", "--sets", "porian-cosine", "--variants",
        "baseline", "--cache", str(tmp_path / "cache"), "--out", str(out)])
    assert "| porian-cosine | baseline | 62 |" in table  # the held-out table's 62 fit rows
    result = json.loads(out.with_suffix(".json").read_text())["porian-cosine"]["baseline"]
    assert len(result["optima"]) == 12  # every budget, 1.25e16 ... 2.56e19


def test_optimum_loss_diagnosis_variant_rows(shared_data):
    diag = _load("optimum_loss_diagnosis")
    rows = diag.load_set(shared_data, "porian-cosine")
    by_name = {v.name: v for v in diag.VARIANTS}
    fit = diag.variant_mask(rows, by_name["baseline"])
    assert fit.sum() == 62 and rows.c[fit].max() == 1.6e18
    assert diag.variant_mask(rows, by_name["hindsight"]).sum() == rows.c.size == 88
    near = diag.variant_mask(rows, by_name["near"])
    vert = diag.vertices(rows)
    dist = np.abs(np.log(rows.n) - np.log([vert[float(c)][0] for c in rows.c]))
    assert np.all(dist[near] <= 1.0) and np.all(fit[near]) and not np.any(near & fit & (dist > 1))
    assert set(rows.c[diag.variant_mask(rows, by_name["no-small"])]) == {
        1e17, 2e17, 4e17, 8e17, 1.6e18}
    internal = by_name["internal"]
    assert diag.scored_budgets(rows, internal) == [4e17, 8e17, 1.6e18]
    assert diag.scored_budgets(rows, by_name["baseline"]) == [3.2e18, 6.4e18, 1.28e19, 2.56e19]


@pytest.mark.slow
def test_api_optimum_diagnosis_smoke(shared_data, tmp_path):
    out = tmp_path / "api.md"
    table = _load("api_optimum_diagnosis").main([
        "--data", str(shared_data), "--tiny", "--variants", "baseline", "--cache",
        str(tmp_path / "cache"), "--out", str(out)])
    assert "| baseline | 73 | 26 |" in table
    rows = json.loads(out.with_suffix(".json").read_text())["baseline"]["rows"]
    # each term adds loss (per draw, so in the median too); the soft cap only lowers the mean
    for r in rows:
        assert r["steps"] >= r["lr_below"] >= 0 and r["hi_lr"] >= 0 and r["shape"] >= 0
        assert r["cap"] <= 1e-12

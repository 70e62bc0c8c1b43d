"""One set of diagnostic thresholds: the warnings fire exactly where report.md says they should."""

import arviz as az
import numpy as np
import pytest

from bayes_scaling.diagnostics import (
    ESS_LIMIT,
    R_HAT_LIMIT,
    Diagnostics,
    diagnose,
    diagnostic_warnings,
)


def _good(**changes):
    values = {"r_hat_max": 1.0, "ess_bulk_min": 5000.0, "ess_tail_min": 5000.0, "divergences": 0}
    return {**values, **changes}


def test_ess_warning_fires_below_the_limit_report_md_states():
    assert diagnostic_warnings(_good(ess_bulk_min=ESS_LIMIT)) == []
    # the 2025 API case of the issue: ESS 357 passed silently when the warning fired below 100
    (warning,) = diagnostic_warnings(_good(ess_bulk_min=357.0, ess_tail_min=137.0))
    assert f"< {ESS_LIMIT}" in warning and "bulk 357" in warning and "tail 137" in warning


def test_r_hat_limit_and_single_chain():
    assert diagnostic_warnings(_good(r_hat_max=R_HAT_LIMIT)) == []
    (warning,) = diagnostic_warnings(_good(r_hat_max=1.02))
    assert "1.020" in warning and "--num-warmup" in warning
    (warning,) = diagnostic_warnings(_good(r_hat_max=float("nan")))
    assert "2 chains" in warning


def test_diagnose_computes_and_explains():
    rng = np.random.default_rng(0)
    stuck = np.stack([rng.normal(0, 1, 300), rng.normal(5, 1, 300)])  # two chains disagree
    idata = az.from_dict(posterior={"x": stuck, "y": rng.normal(size=(2, 300))})
    d = diagnose(idata, ["x", "y"], divergences=2)
    assert isinstance(d, Diagnostics)
    assert d.r_hat_max > 1.5 and d.divergences == 2
    assert d.warnings == diagnostic_warnings(d)
    assert len(d.warnings) == 3
    assert d.as_dict()["divergences"] == 2


def test_diagnose_one_chain_has_no_r_hat():
    idata = az.from_dict(posterior={"x": np.random.default_rng(1).normal(size=(1, 500))})
    d = diagnose(idata, ["x"], divergences=0)
    assert np.isnan(d.r_hat_max)
    assert d.ess_bulk_min == pytest.approx(500, rel=0.3)

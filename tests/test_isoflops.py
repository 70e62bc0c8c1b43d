import json

import jax
import numpy as np
import pytest

from bayes_scaling.cli import main
from bayes_scaling.errors import DataFormatError
from bayes_scaling.isoflops import (
    analyze_isoflops,
    budget_optima,
    fit_power_law,
    read_isoflops,
    write_isoflops_outputs,
)

TINY = {"num_warmup": 100, "num_samples": 200, "num_chains": 2}


def _synthetic(tmp_path, a=0.8, b=0.48):
    """Isoflop profiles whose loss is a parabola in ln N centred on a * C^b."""
    rows = []
    for c in (1e18, 3e18, 1e19, 3e19, 1e20, 3e20):
        centre = np.log(a * c**b)
        for x in centre + np.linspace(-1.5, 1.5, 7):
            rows.append({"parameters": float(np.exp(x)), "compute_budget": c,
                         "final_loss": 3.0 + 0.2 * (x - centre) ** 2 - 0.1 * np.log10(c)})
    path = tmp_path / "iso.json"
    path.write_text(json.dumps(rows))
    return path


def test_synthetic_power_law_recovered(tmp_path):
    data = read_isoflops(_synthetic(tmp_path))
    optima = budget_optima(data)
    assert len(optima) == 6 and all(o.vertex_ok for o in optima)
    for o in optima:
        assert o.n_vertex == pytest.approx(0.8 * o.compute_budget**0.48, rel=1e-6)
    result = analyze_isoflops(jax.random.PRNGKey(0), data, method="vertex", **TINY)
    assert result.n_fit.a == pytest.approx(0.8, rel=1e-4)
    assert result.n_fit.b == pytest.approx(0.48, abs=1e-6)
    assert result.d_fit.b == pytest.approx(1 - 0.48, abs=1e-6)
    assert result.d_fit.a == pytest.approx(1 / (6 * 0.8), rel=1e-4)
    summary = result.to_dict()
    lo, hi = summary["bayes"]["b"]["ci90"]
    assert lo - 0.01 <= 0.48 <= hi + 0.01
    pred = summary["predictions"]["1e+24"]
    assert pred["n_opt"] == pytest.approx(0.8 * 1e24**0.48, rel=1e-3)
    assert pred["bayes_n_opt"]["ci90"][0] <= pred["n_opt"] <= pred["bayes_n_opt"]["ci90"][1]
    files = write_isoflops_outputs(tmp_path / "o", result)
    assert "isoflops.json" in files and (tmp_path / "o" / "isoflops_n_opt.png").exists()


def test_real_file_and_command(shared_data, tmp_path, capsys):
    path = shared_data / "isoflops_curves.json"
    out = tmp_path / "out"
    assert main(["isoflops", str(path), "--out", str(out), "--num-warmup", "100",
                 "--num-samples", "100", "--num-chains", "1"]) == 0
    summary = json.loads((out / "isoflops.json").read_text())
    n23 = summary["predictions"]["1e+23"]["n_opt"]
    n24 = summary["predictions"]["1e+24"]["n_opt"]
    assert 3e10 < n23 < 1.5e11 and 1e11 < n24 < 5e11
    assert summary["predictions"]["1e+23"]["d_opt"] == pytest.approx(1e23 / (6 * n23), rel=1e-6)
    for name in ("isoflops.md", "isoflops_profiles.png", "isoflops_n_opt.png",
                 "isoflops_d_opt.png"):
        assert (out / name).stat().st_size > 0
    assert "N_opt" in capsys.readouterr().out


def test_power_law_and_bad_files(tmp_path):
    fit = fit_power_law([1e18, 1e20], [1e8, 1e9])
    assert fit.b == pytest.approx(0.5) and fit(1e22) == pytest.approx(1e10)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"parameters": 1e8, "compute_budget": 1e18, "final_loss": 3},
                               {"parameters": 1e8, "compute_budget": "x", "final_loss": 3}]))
    with pytest.raises(DataFormatError, match=r"bad\.json: row 2, column 'compute_budget'"):
        read_isoflops(bad)
    assert main(["isoflops", str(bad)]) == 2


def test_quadratic_vertex_one_rule():
    from bayes_scaling.isoflops import quadratic_vertex

    x = np.log([1e7, 2e7, 4e7, 8e7])
    loss = (x - np.log(3e7)) ** 2 + 3.0
    x_star, l_star, used = quadratic_vertex(x, loss)
    assert used and x_star == pytest.approx(np.log(3e7)) and l_star == pytest.approx(3.0)
    # vertex outside the sizes run: the best run, never an extrapolated parabola
    x_star, l_star, used = quadratic_vertex(x, (x - np.log(1e9)) ** 2)
    assert not used and x_star == x[-1]
    # concave, or fewer than three distinct sizes: the best run
    assert quadratic_vertex(x, -loss)[2] is False
    assert quadratic_vertex(x[[0, 0, 1]], loss[[0, 0, 1]])[:2] == (x[1], loss[1])

"""The high-lr penalty experiment (Li et al. 2025 peak-lr sweeps): recovery and a real-data run."""

import csv
import json
from collections import defaultdict

import numpy as np
import pytest

from experiment_scripts import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("lr_penalty_li2025")


def _synthetic(script, *, b_1e4=0.12, g_b=0.4, c_1e4=0.06, k=0.5, noise=0.0, seed=0):
    """Sweeps of the script's form with known slope and curvature laws, each bracketing lr*.

    Four rates per sweep: with three (the data's usual design) the pooled fit's (b, c, k) trade
    off against each group's lr* and noise-free data do not pin them (the script's design check
    measures that at the data's own design).
    """
    rng = np.random.default_rng(seed)
    groups, truth = [], []
    for j, steps in enumerate((100.0, 300.0, 1000.0, 3000.0, 1e4, 3e4)):
        for offset in (0.0, 0.37):
            u_star = np.log(2e-3) - 0.2 * j + offset
            u = u_star + np.array([-1.0, -0.3, 0.35, 1.0])
            loss = (3.0 + float(script.slope(b_1e4, g_b, steps)) * np.maximum(u_star - u, 0.0)
                    + float(script.curvature(c_1e4, k, steps)) * np.maximum(u - u_star, 0.0) ** 2
                    + noise * rng.standard_normal(4))
            groups.append(script.LrGroup(model=f"m{j}", n_no_emb=1e7 * (1 + j), n_tokens=steps
                                         * 2 ** 20, steps=steps, learning_rate=np.exp(u),
                                         loss=loss))
            truth.append(np.exp(u_star))
    return groups, np.array(truth)


def test_fit_group_recovers_lr_star_and_curvature(script):
    groups, truth = _synthetic(script)
    for g, lr_star in zip(groups, truth, strict=True):
        fit = script.fit_group(g, float(script.slope(0.12, 0.4, g.steps)))
        assert fit.bracketed and fit.inside
        assert abs(np.log(fit.optimal_learning_rate / lr_star)) <= script.GRID_STEP
        want = float(script.curvature(0.06, 0.5, g.steps))
        assert fit.c == pytest.approx(want, rel=0.05)
        assert fit.optimal_loss == pytest.approx(3.0, abs=2e-3)


def test_analyse_recovers_known_c_and_k(script):
    groups, _ = _synthetic(script, noise=2e-4)
    result = script.analyse(groups, n_boot=3)
    assert result["pooled"]["b_1e4"] == pytest.approx(0.12, rel=0.15)
    assert result["pooled"]["g_b"] == pytest.approx(0.4, abs=0.1)
    for name in ("per-group", "pooled"):
        (c_1e4, k, *_), boot = result["estimates"][name]
        assert c_1e4 == pytest.approx(0.06, rel=0.2), name
        assert k == pytest.approx(0.5, abs=0.1), name
        assert boot.shape == (3, 2)
    assert len(result["used"]) == len(groups)


def test_analyse_sees_a_different_k(script):
    """The estimate follows the truth: a flat curvature (k = 0) is not read as the prior's 0.5."""
    groups, _ = _synthetic(script, k=0.0, c_1e4=0.03)
    (c_1e4, k, *_), _ = script.analyse(groups, n_boot=1)["estimates"]["per-group"]
    assert c_1e4 == pytest.approx(0.03, rel=0.2) and abs(k) < 0.1


def test_runs_on_li2025(script, shared_data, tmp_path):
    out = tmp_path / "lr.md"
    table = script.main(["--data", str(shared_data), "--bootstrap", "2", "--out", str(out)])
    payload = json.loads(out.with_suffix(".json").read_text())
    # recount from the CSV: groups of >= 3 distinct rates without a repeated rate
    by_key = defaultdict(list)
    with open(shared_data / script.LI_FILE, newline="") as handle:
        for r in csv.DictReader(handle):
            by_key[(r["model"], r["train_tokens"])].append((float(r["peak_lr"]), float(r["loss"])))
    kept = {k: v for k, v in by_key.items()
            if len({lr for lr, _ in v}) == len(v) and len(v) >= 3}
    repeated = [k for k, v in by_key.items() if len({lr for lr, _ in v}) < len(v)]
    assert len(payload["groups"]) == len(kept)
    assert sum("repeated" in why for why in payload["dropped"].values()) == len(repeated) > 0
    interior = sum(0 < int(np.argmin([loss for _, loss in sorted(v)])) < len(v) - 1
                   for v in kept.values())
    assert sum(g["bracketed"] for g in payload["groups"]) == interior
    assert f"Bracketed: {interior} of {len(kept)}" in table
    est = payload["estimates"]["per-group"]
    assert est["c_hi"] > 0 and np.isfinite(est["k_hi"])
    assert payload["prior"]["c_hi"][0] == pytest.approx(0.5 * 0.6744897501960817)


def test_missing_data_is_a_one_line_error(script, tmp_path, capsys):
    with pytest.raises(SystemExit):
        script.main(["--data", str(tmp_path), "--out", str(tmp_path / "x.md")])
    assert f"expected {script.LI_FILE} in --data" in capsys.readouterr().err

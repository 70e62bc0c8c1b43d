"""Integration: `bayes-scaling fit` on real API rows with the real Posterior and tiny MCMC."""

import dataclasses
import json

import numpy as np
import pytest

from bayes_scaling.cli import main
from bayes_scaling.cli.fit_cmd import FIT_SAMPLER
from bayes_scaling.inference import NutsConfig


def test_fit_command_end_to_end(shared_data, tmp_path, capsys):
    rows = (shared_data / "cs336_api_runs.csv").read_text().splitlines()
    header, body = rows[0], [r for r in rows[1:] if r.startswith("brandon-snider")]
    runs = tmp_path / "runs.csv"
    runs.write_text("\n".join([header, *body[::3]]) + "\n")  # 33 real 2025-API runs
    out = tmp_path / "fit"
    status = main(["fit", str(runs), "--out", str(out), "--num-warmup", "20",
                   "--num-samples", "20", "--num-chains", "1", "--seed", "3"])
    assert status == 0
    report = json.loads((out / "report.json").read_text())
    assert report["n_runs"] == 33 and report["strategy"] == "fit"
    assert report["param_count"] == "non_embedding"
    rec = report["recommended"]
    assert rec["num_heads"] * 64 == rec["d_model"] and rec["batch_size"] in (128, 256)
    assert 1e-5 <= rec["learning_rate"] <= 1e-2
    column = header.split(",").index("learning_rate")
    tried = [float(r.split(",")[column]) for r in body[::3]]
    assert rec["learning_rate"] <= max(tried) * (1 + 1e-9)  # capped at the explored maximum
    assert rec["learning_rate"] >= min(tried) * (1 - 1e-9)  # and at the explored minimum
    assert "learning_rate" not in {flag["name"] for flag in rec["outside_explored"]}
    assert np.isclose(rec["tokens"] * 6 * rec["non_embedding_params"], 1e19)
    lo, hi = rec["predicted_loss"]["ci90"]
    assert lo <= rec["predicted_loss"]["median"] <= hi
    for name in ("report.md", "runs.csv", "posterior.nc", "n_opt.png", "posterior_pairs.png",
                 "ppc.png", "isoflops_predictive.png"):
        assert (out / name).exists()
    assert report["shape_rule"] == "expected_loss"
    # every sampler setting the fit used, the command's own (depth 10, no padding) included
    assert set(report["nuts"]) == {f.name for f in dataclasses.fields(NutsConfig)}
    assert report["nuts"] == {**dataclasses.asdict(NutsConfig()), **FIT_SAMPLER,
                              "num_warmup": 20, "num_samples": 20, "num_chains": 1}
    assert report["nuts"]["max_tree_depth"] == 10 and report["nuts"]["exact_capacity"] is True
    assert report["law_units"].startswith("internal")
    assert {"a_lr", "lam", "omega"} <= set(report["nuisance"])
    md = (out / "report.md").read_text()
    assert "internal" in md and "lr* exponent" in md
    gap = rec["gap_to_optimum"]  # the recommendation is capped to the tried learning rates
    assert gap["capped"] and gap["total"] == pytest.approx(
        rec["predicted_loss"]["median"] - report["loss_opt"]["median"])
    assert f"Of the {gap['total']:.3f} nats between the predicted loss" in md
    printed = capsys.readouterr().out
    assert "WARNING: MCMC diagnostics" in printed  # 20 draws cannot pass r-hat / ESS checks
    assert str(out) in printed


def test_fit_command_bad_file_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("n_params,flops,loss\n1e8,6e17,oops\n")
    assert main(["fit", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "row 2" in err[0] and "'loss'" in err[0] and "bad.csv" in err[0]

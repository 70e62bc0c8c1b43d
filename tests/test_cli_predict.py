"""`bayes-scaling predict` and the posterior loader, on a tiny real fit of API rows."""

import csv

import arviz as az
import jax
import numpy as np
import pytest

from bayes_scaling.cli import main
from bayes_scaling.cli.predict_cmd import LAW_COLUMNS, PREDICTION_COLUMNS
from bayes_scaling.inference import NutsConfig, fit_posterior
from bayes_scaling.posterior_io import load_posterior
from bayes_scaling.recommend import recommend
from bayes_scaling.report import write_outputs
from bayes_scaling.runs_io import read_runs, runs_from_observations

COLUMNS = "d_model,num_layers,num_heads,batch_size,learning_rate,train_flops"


@pytest.fixture(scope="module")
def split(shared_data, tmp_path_factory):
    rows = (shared_data / "cs336_api_runs.csv").read_text().splitlines()
    header, body = rows[0], [r for r in rows[1:] if r.startswith("brandon-snider")]
    tmp = tmp_path_factory.mktemp("predict")
    train, held = tmp / "train.csv", tmp / "held.csv"
    train.write_text("\n".join([header, *body]) + "\n")
    runs = read_runs(train)
    small = [o for o in runs.observations if o.config.train_flops <= 1e16][::2]
    large = [o for o in runs.observations if o.config.train_flops >= 3e16]
    assert len(small) >= 15 and len(large) >= 10
    fitted = runs_from_observations(small)
    held.write_text(COLUMNS + ",loss\n" + "".join(
        f"{c.d_model},{c.num_layers},{c.num_heads},{c.batch_size},{c.learning_rate!r},"
        f"{c.train_flops},{o.loss!r}\n" for o in large for c in [o.config]))
    key_fit, key_rec = jax.random.split(jax.random.PRNGKey(2))
    posterior = fit_posterior(key_fit, fitted.features(), fitted.loss,
                              nuts=NutsConfig(num_warmup=20, num_samples=20, num_chains=1))
    rec = recommend(key_rec, posterior, 1e19)
    run_dir = tmp / "fit"
    write_outputs(run_dir, runs=fitted, posterior=posterior, recommendation=rec,
                  target_flops=1e19, budget_flops=float(fitted.flops.sum()),
                  flops_used=float(fitted.flops.sum()), strategy="fit", figures=False)
    return {"posterior": posterior, "run_dir": run_dir, "held": held, "tmp": tmp,
            "n_held": len(large)}


def _read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_loaded_posterior_predicts_like_the_fitted_one(split):
    fitted, loaded = split["posterior"], load_posterior(split["run_dir"])
    held = read_runs(split["held"]).features()
    assert loaded.nuisance and loaded.data_range == fitted.data_range
    assert loaded.extrapolation_distance(held).max() > 0  # held-out rows lie beyond the data
    np.testing.assert_allclose(loaded.predict_mean(held), fitted.predict_mean(held), rtol=1e-12)
    np.testing.assert_allclose(loaded.discrepancy_sd(held), fitted.discrepancy_sd(held),
                               rtol=1e-12)
    key = jax.random.PRNGKey(5)
    np.testing.assert_allclose(loaded.sample_predictive(key, held),
                               fitted.sample_predictive(key, held), rtol=1e-12)


def test_loader_reads_discrepancy_draws_from_another_group(split, tmp_path):
    import shutil

    run_dir = tmp_path / "moved"
    shutil.copytree(split["run_dir"], run_dir)
    idata = az.from_netcdf(split["run_dir"] / "posterior.nc")
    # posterior.nc keeps tau_x, z_x in the prior group; move them to yet another group
    moved = az.InferenceData(posterior=idata.posterior,
                             prior_predictive=idata.prior[["tau_x", "z_x"]])
    (run_dir / "posterior.nc").unlink()
    moved.to_netcdf(str(run_dir / "posterior.nc"))
    held = read_runs(split["held"]).features()
    key = jax.random.PRNGKey(5)
    np.testing.assert_allclose(load_posterior(run_dir).sample_predictive(key, held),
                               split["posterior"].sample_predictive(key, held), rtol=1e-12)


def test_predict_writes_nested_intervals_and_scores_the_loss(split, capsys):
    out = split["tmp"] / "pred.csv"
    assert main(["predict", str(split["run_dir"]), str(split["held"]), "--out", str(out)]) == 0
    rows = _read(out)
    assert len(rows) == split["n_held"]
    assert list(rows[0]) == [*COLUMNS.split(","), *PREDICTION_COLUMNS, *LAW_COLUMNS, "loss",
                             "error", "covered50", "covered90"]
    held = read_runs(split["held"]).features()
    mean = np.asarray(split["posterior"].predict_mean(held))
    for i, r in enumerate(rows):
        v = [float(r[c]) for c in ("ci90_lo", "ci50_lo", "median", "ci50_hi", "ci90_hi")]
        assert v == sorted(v) and v[0] < v[-1]
        law = [float(r[c]) for c in ("law_ci90_lo", "law_median", "law_ci90_hi")]
        assert law == pytest.approx(np.quantile(mean[:, i], [0.05, 0.5, 0.95]), rel=1e-12)
        assert law[2] - law[0] < v[-1] - v[0]  # without noise and discrepancy: narrower
        loss = float(r["loss"])
        assert float(r["error"]) == pytest.approx(float(r["median"]) - loss)
        assert r["covered90"] == str(v[0] <= loss <= v[-1]).lower()
        assert r["covered50"] == str(v[1] <= loss <= v[3]).lower()
    printed = capsys.readouterr().out.strip().splitlines()
    n90 = sum(r["covered90"] == "true" for r in rows)
    assert len(printed) == 1
    assert f"{split['n_held']} rows" in printed[0] and f"90% covers {n90}/" in printed[0]


def test_loss_column_does_not_change_predictions(split, capsys):
    lines = split["held"].read_text().splitlines()
    no_loss = split["tmp"] / "no_loss.csv"
    no_loss.write_text("\n".join([COLUMNS] + [",".join(x.split(",")[:-1]) for x in lines[1:]]))
    other_loss = split["tmp"] / "other_loss.csv"
    other_loss.write_text("\n".join([lines[0]] + [",".join(x.split(",")[:-1] + ["9.5"])
                                                  for x in lines[1:]]))
    outs = []
    for name, path in (("a", split["held"]), ("b", no_loss), ("c", other_loss)):
        out = split["tmp"] / f"pred_{name}.csv"
        assert main(["predict", str(split["run_dir"]), str(path), "--out", str(out)]) == 0
        outs.append(_read(out))
    assert "loss" not in outs[1][0] and "covered90" not in outs[1][0]
    for a, b, c in zip(*outs, strict=True):
        for col in PREDICTION_COLUMNS:
            assert a[col] == b[col] == c[col]
        assert c["covered90"] == "false"  # a loss of 9.5 is far outside every interval
    assert "with a loss" not in capsys.readouterr().out.splitlines()[1]


def test_predict_bad_input_one_line_exit_2(split, tmp_path, capsys):
    bad_rows = tmp_path / "bad.csv"
    bad_rows.write_text(COLUMNS + "\n512,8,8,128,oops,1e16\n")
    generic = tmp_path / "generic.csv"
    generic.write_text("n_params,flops\n1e8,1e18\n")
    cases = [
        ([str(tmp_path / "nowhere"), str(split["held"])], "no such folder"),
        ([str(split["run_dir"]), str(bad_rows)], "'learning_rate'"),
        ([str(split["run_dir"]), str(generic)], "expected API rows"),
        ([str(tmp_path), str(split["held"])], "expected posterior.nc"),
    ]
    for args, message in cases:
        assert main(["predict", *args, "--out", str(tmp_path / "o.csv")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "o.csv").exists()

"""posterior.nc is a full InferenceData that ArviZ's tools accept; fits report their progress."""

import arviz as az
import jax
import numpy as np
import pytest

from bayes_scaling.features import features_from_generic
from bayes_scaling.inference import OBSERVED_SITE, NutsConfig, Refitter
from bayes_scaling.posterior import DISCREPANCY_GROUP
from test_progress import RecordingProgress

TINY = NutsConfig(num_warmup=20, num_samples=20, num_chains=2, max_tree_depth=5)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    n = np.geomspace(1e7, 1e9, 16)
    tokens = 20 * n * rng.uniform(0.3, 3.0, n.size)
    loss = (1.8 + 400 * n**-0.34 + 600 * tokens**-0.36) * np.exp(rng.normal(0, 0.01, n.size))
    progress = RecordingProgress()
    refitter = Refitter(nuts=TINY, progress=progress, label="final fit")
    posterior = refitter.fit(jax.random.key(0), features_from_generic(n, tokens), loss)
    return posterior, loss, progress


def test_inference_data_has_every_group_with_the_right_shapes(fitted):
    posterior, loss, _ = fitted
    idata = posterior.idata
    assert {"posterior", "sample_stats", "log_likelihood", "observed_data",
            DISCREPANCY_GROUP} <= set(idata.groups())
    assert DISCREPANCY_GROUP == "prior"
    assert {"tau_x", "z_x"} <= set(idata.prior.data_vars)
    assert not {"tau_x", "z_x"} & set(idata.posterior.data_vars)  # prior-only, not posterior
    assert idata.log_likelihood[OBSERVED_SITE].shape == (2, 20, loss.size)
    np.testing.assert_allclose(idata.observed_data[OBSERVED_SITE].values, np.log(loss))
    stats = idata.sample_stats
    for name in ("diverging", "acceptance_rate", "n_steps", "tree_depth", "energy", "lp"):
        assert stats[name].shape == (2, 20), name
    assert stats["diverging"].dtype == bool and int(stats["n_steps"].min()) >= 1
    assert int(stats["tree_depth"].max()) <= TINY.max_tree_depth
    # lp and the pointwise log likelihood are finite numbers that vary across draws
    assert np.all(np.isfinite(idata.log_likelihood[OBSERVED_SITE].values))
    assert np.std(stats["lp"].values) > 0
    assert posterior.draws["tau_x"].shape == (40,)  # the Posterior still finds them


def test_posterior_nc_loads_and_loo_accepts_it(fitted, tmp_path):
    from bayes_scaling.recommend import recommend
    from bayes_scaling.report import write_outputs
    from bayes_scaling.runs_io import read_runs

    posterior, loss, _ = fitted
    n = np.geomspace(1e7, 1e9, 16)
    csv = tmp_path / "runs.csv"
    csv.write_text("n_params,n_tokens,loss\n" + "".join(
        f"{a:.6g},{20 * a:.6g},{float(b)!r}\n" for a, b in zip(n, loss, strict=True)))
    runs = read_runs(csv)
    rec = recommend(jax.random.key(1), posterior, 1e21)
    write_outputs(tmp_path, runs=runs, posterior=posterior, recommendation=rec,
                  target_flops=1e21, budget_flops=1e20, flops_used=1e20, strategy="fit",
                  figures=False)
    loaded = az.from_netcdf(tmp_path / "posterior.nc")
    result = az.loo(loaded)  # the check of the issue: python -c "az.loo(az.from_netcdf(...))"
    assert np.isfinite(result["elpd_loo"]) and result["n_data_points"] == loss.size
    assert az.bfmi(loaded).shape == (2,)


def test_fit_reports_warmup_and_sampling_steps_under_its_label(fitted):
    _, loss, progress = fitted
    (task,) = progress.tasks
    assert task.description.startswith(f"final fit on {loss.size} runs (2 chains x 20+20)")
    assert task.total == task.done == 2 * (20 + 20)
    assert task.notes[0] == "compiling" and {"warmup", "sampling"} <= set(task.notes)
    assert task.closed

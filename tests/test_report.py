import json

import arviz as az
import jax
import numpy as np
import pytest
from matplotlib.figure import Figure

from bayes_scaling import plots
from bayes_scaling.diagnostics import diagnostic_warnings
from bayes_scaling.features import features_from_configs
from bayes_scaling.recommend import recommend
from bayes_scaling.report import write_outputs
from bayes_scaling.runs_io import read_runs
from bayes_scaling.summary import summarize
from fake_posterior import FakePosterior

DESIGN_KEYS = {"target_flops", "budget_flops", "flops_used", "n_runs", "strategy",
               "param_count", "n_opt", "d_opt", "loss_opt", "recommended", "posterior",
               "diagnostics"}
RECOMMENDED_KEYS = {"d_model", "num_layers", "num_heads", "batch_size", "learning_rate",
                    "non_embedding_params", "total_params", "tokens", "predicted_loss"}


def test_summarize_equal_tailed():
    s = summarize(np.arange(101.0))
    assert s == {"median": 50.0, "ci50": [25.0, 75.0], "ci90": [5.0, 95.0]}


def test_diagnostic_warnings():
    assert diagnostic_warnings({"r_hat_max": 1.0, "ess_bulk_min": 1000, "divergences": 0}) == []
    bad = diagnostic_warnings({"r_hat_max": 1.2, "ess_bulk_min": 10, "divergences": 3})
    assert len(bad) == 3 and all("rerun" in w for w in bad)


@pytest.fixture(scope="module")
def api_runs(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "runs.csv"
    lines = ["d_model,num_layers,num_heads,batch_size,learning_rate,train_flops,loss"]
    for flops, base in ((10**16, 4.6), (10**17, 4.0)):
        for d, layers in ((128, 2), (256, 4), (384, 6), (512, 8)):
            lines.append(f"{d},{layers},4,128,0.0006,{flops},{base + (d - 320) ** 2 / 1e5}")
    path.write_text("\n".join(lines) + "\n")
    return read_runs(path)


def test_write_outputs_files_and_keys(tmp_path, api_runs):
    posterior = FakePosterior(lr0=6e-4)
    rec = recommend(jax.random.PRNGKey(0), posterior, 1e19)
    report = write_outputs(tmp_path / "out", runs=api_runs, posterior=posterior,
                           recommendation=rec, target_flops=1e19, budget_flops=2e18,
                           flops_used=4.4e17, strategy="fit", extra={"note": "x"},
                           rng_key=jax.random.PRNGKey(3))
    out = tmp_path / "out"
    on_disk = json.loads((out / "report.json").read_text())
    assert DESIGN_KEYS <= set(on_disk)
    extra = set(on_disk["recommended"]) - RECOMMENDED_KEYS  # issue 7: intervals and flags
    assert RECOMMENDED_KEYS <= set(on_disk["recommended"])
    assert {"learning_rate_ci50", "learning_rate_ci90", "outside_explored",
            "gap_to_optimum", "predicted_loss_law_only"} <= extra
    assert all(k.endswith(("_ci50", "_ci90"))
               for k in extra - {"outside_explored", "gap_to_optimum", "predicted_loss_law_only"})
    law, full = on_disk["recommended"]["predicted_loss_law_only"], on_disk["recommended"][
        "predicted_loss"]
    mean = np.asarray(posterior.predict_mean(features_from_configs([rec.config()])))[:, 0]
    assert law["median"] == pytest.approx(np.median(mean))
    assert law["ci90"][1] - law["ci90"][0] < full["ci90"][1] - full["ci90"][0]  # no noise in it
    assert set(on_disk["posterior"]) == {"E", "A", "B", "alpha", "beta"}
    assert set(on_disk["posterior"]["E"]) == {"median", "ci90"}
    assert set(on_disk["diagnostics"]) == {"r_hat_max", "ess_bulk_min", "divergences"}
    assert set(on_disk["recommended"]["predicted_loss"]) == {"median", "ci50", "ci90"}
    assert on_disk["n_runs"] == 8 and on_disk["note"] == "x"
    assert on_disk["recommended"]["d_model"] == rec.d_model
    for name in ("report.md", "runs.csv", "posterior.nc", "isoflops_predictive.png", "n_opt.png",
                 "d_opt.png", "loss_at_target.png", "posterior_pairs.png", "ppc.png"):
        assert (out / name).stat().st_size > 0, name
        assert name in report["files"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left
    md = (out / "report.md").read_text()
    assert md.index("Answer") < md.index("Law parameters")
    assert (f"{law['ci90'][0]:.3f}–{law['ci90'][1]:.3f} from the law's parameter uncertainty "
            "alone") in md
    assert "ppc.png" in md and "ppc.png" in on_disk["figures"].values()
    assert 0.0 <= on_disk["ppc"]["coverage90"] <= 1.0 and on_disk["ppc"]["n_runs"] == 8
    assert f"d_model = {rec.d_model}" in md and "extrapolation" in md
    assert az.from_netcdf(out / "posterior.nc").posterior["E"].size == 400


def test_plots_return_axes(api_runs, shared_data):
    posterior = FakePosterior(lr0=6e-4)
    ax = Figure().add_subplot()
    assert plots.plot_isoflop_predictive(ax, jax.random.PRNGKey(0), posterior, api_runs) is ax
    assert len(ax.collections) > 0
    ax = Figure().add_subplot()
    plots.plot_optimal_allocation(ax, posterior, quantity="n_tokens", data_flops=[1e16, 1e17],
                                  target_flops=1e19)
    assert 1e19 < ax.get_xlim()[1] <= 3e19  # a little past the target, no longer 100x
    axes = Figure().subplots(5, 5)
    assert plots.plot_posterior_pairs(axes, posterior) is axes
    epoch = read_runs(shared_data / "epoch_chinchilla.csv")
    levels = plots.compute_levels(epoch.flops)
    assert 4 <= np.unique(levels).size <= 12
    assert np.unique(plots.compute_levels(np.array([1e19, 0.999e19, 3e19]))).size == 2


def test_shape_for_size_is_continuous_and_exact():
    from bayes_scaling.params import non_embedding_params

    n = np.geomspace(2e6, 5e8, 25)
    d, layers = plots.shape_for_size(n, 90.0)
    np.testing.assert_allclose(non_embedding_params(d, layers), n, rtol=1e-9)
    np.testing.assert_allclose(d / layers, 90.0)
    assert np.all(np.diff(d) > 0) and np.all(np.diff(layers) > 0)


def test_isoflop_curve_is_smooth_and_points_move_onto_it(api_runs):
    posterior = FakePosterior(lr0=6e-4)
    grid = np.geomspace(1e6, 1e8, 40)
    features, n_used = plots.isoflop_curve_features(posterior, api_runs, 1e17, grid)
    np.testing.assert_array_equal(n_used, grid)
    assert np.all(features.batch_size == 128)
    mean = posterior.predict_mean(features).mean(axis=0)
    # a smooth convex-ish profile: second differences in ln N are small and never jump
    assert np.max(np.abs(np.diff(mean, 2))) < 0.01
    check = plots.predictive_check(jax.random.PRNGKey(1), posterior, api_runs)
    assert check["median"].shape == (8,) and np.all(check["q05"] <= check["q95"])
    ax = Figure().add_subplot()
    assert plots.plot_predictive_check(ax, check, api_runs) is ax
    assert any("interval" in t.get_text() for t in ax.texts)


def _minimal_report() -> dict:
    return {"target_flops": 1e19, "budget_flops": 1.0, "flops_used": 1.0, "n_runs": 3,
            "strategy": "fit", "param_count": "non_embedding",
            "recommended": {"d_model": 64, "num_layers": 1, "num_heads": 1, "batch_size": 128,
                            "learning_rate": 1e-3, "non_embedding_params": 1, "total_params": 2,
                            "tokens": 3.0, "predicted_loss": summarize([1.0, 2.0])},
            "n_opt": summarize([1.0]), "d_opt": summarize([1.0]), "loss_opt": summarize([1.0]),
            "posterior": {"E": {"median": 1.0, "ci90": [0.5, 1.5]}},
            "diagnostics": {"r_hat_max": 1.0, "ess_bulk_min": 500.0, "divergences": 0}}


def test_markdown_states_units_and_nuisance():
    from bayes_scaling.report_markdown import render_markdown

    base = _minimal_report()
    md = render_markdown({**base, "law_units": "internal: x",
                          "nuisance": {"lam": {"median": 0.2, "ci90": [0.1, 0.3]}}}, {})
    assert "internal" in md and "N_eff = N_blocks + lam" in md and "| lam:" in md
    md = render_markdown({**base, "law_units": "source: x"}, {})
    assert "data's convention" in md and "N_eff" not in md


def test_markdown_reads_the_2026_target_score_under_its_new_and_its_old_name():
    from bayes_scaling.report_markdown import render_markdown

    excluded = {"hidden_size": 2048, "num_layers": 16, "batch_size": 256,
                "memory_bytes": 2.0e11}
    for key in ("target_score", "expected_loss"):  # old run directories carry expected_loss
        choice = {"n_candidates": 10, "n_out_of_memory": 2, "memory_capacity": 1.8e11,
                  "memory_bytes": 1.5e11, key: 2.5, "excluded_best": {**excluded, key: 2.4321}}
        md = render_markdown({**_minimal_report(), "api": "2026", "target_choice": choice}, {})
        assert "removed the unconstrained optimum" in md and "2.4321" in md


def test_figures_need_the_callers_key_and_link_the_loop_progress(tmp_path, api_runs):
    posterior = FakePosterior(lr0=6e-4)
    rec = recommend(jax.random.PRNGKey(0), posterior, 1e19)
    args = dict(runs=api_runs, posterior=posterior, recommendation=rec, target_flops=1e19,
                budget_flops=2e18, flops_used=4.4e17, strategy="active")
    with pytest.raises(ValueError, match="rng_key"):
        write_outputs(tmp_path / "a", **args)
    assert not (tmp_path / "a").exists()  # refused before any output
    history = [{"flops_used": f, "n_opt_ci90_ln_width": w, "loss_ci90_width": w / 4}
               for f, w in ((1e17, 1.5), (1e18, 0.9))]
    report = write_outputs(tmp_path / "b", rng_key=jax.random.PRNGKey(1),
                           extra={"loop": {"history": history}}, **args)
    md = (tmp_path / "b" / "report.md").read_text()
    for name in ("loop_progress.png", "trace.png", "rank.png"):
        assert (tmp_path / "b" / name).stat().st_size > 0 and f"]({name})" in md, name
        assert name in report["files"]



def test_report_flags_values_outside_the_explored_range(tmp_path, api_runs):
    rec = recommend(jax.random.PRNGKey(0), FakePosterior(lr0=6e-4), 1e19)
    report = write_outputs(tmp_path / "out", runs=api_runs, posterior=FakePosterior(lr0=6e-4),
                           recommendation=rec, target_flops=1e19, budget_flops=2e18,
                           flops_used=4.4e17, strategy="fit", rng_key=jax.random.PRNGKey(3),
                           figures=False)
    flags = {f["name"]: f for f in report["recommended"]["outside_explored"]}
    assert flags["num_heads"]["explored"] == [4.0, 4.0]  # every fitted run had 4 heads
    assert flags["learning_rate"]["side"] == ("above" if rec.learning_rate > 6e-4 else "below")
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "Outside the explored range" in markdown
    assert f"num_heads = {rec.num_heads} is" in markdown


def test_generic_report_recommends_size_and_tokens_only(tmp_path):
    path = tmp_path / "generic.csv"
    path.write_text("n_params,n_tokens,loss\n1e8,2e9,3.2\n4e8,8e9,2.9\n1e9,2e10,2.7\n")
    runs = read_runs(path)
    posterior = FakePosterior()
    rec = recommend(jax.random.PRNGKey(0), posterior, 1e21, generic=True)
    report = write_outputs(tmp_path / "out", runs=runs, posterior=posterior,
                           recommendation=rec, target_flops=1e21, budget_flops=1e20,
                           flops_used=1e20, strategy="fit", rng_key=jax.random.PRNGKey(3),
                           figures=False)
    recommended = report["recommended"]
    assert {"non_embedding_params", "tokens", "predicted_loss"} <= set(recommended)
    assert not {"d_model", "num_layers", "num_heads", "batch_size", "learning_rate"} & set(
        recommended)
    assert recommended["outside_explored"] == [] and "gap_to_optimum" not in recommended
    assert "no architecture" in (tmp_path / "out" / "report.md").read_text()
    assert "nats between" not in (tmp_path / "out" / "report.md").read_text()


def test_report_says_what_lies_between_the_predicted_loss_and_the_optimum(tmp_path, api_runs):
    posterior = FakePosterior(lr0=5e-3)  # lr* at the target above the cap
    for name, caps in (("capped", {"learning_rate_max": 1e-3}), ("free", {})):
        rec = recommend(jax.random.PRNGKey(0), posterior, 1e19, **caps)
        report = write_outputs(tmp_path / name, runs=api_runs, posterior=posterior,
                               recommendation=rec, target_flops=1e19, budget_flops=2e18,
                               flops_used=4.4e17, strategy="fit", figures=False)
        on_disk = json.loads((tmp_path / name / "report.json").read_text())
        gap = on_disk["recommended"]["gap_to_optimum"]
        # the same medians the report quotes
        assert gap["total"] == pytest.approx(on_disk["recommended"]["predicted_loss"]["median"]
                                             - on_disk["loss_opt"]["median"])
        assert gap == json.loads(json.dumps(report["recommended"]["gap_to_optimum"]))
        md = (tmp_path / name / "report.md").read_text()
        assert f"Of the {gap['total']:.3f} nats between the predicted loss" in md
        assert f"{gap['one_configuration']:.3f} is one configuration for every" in md
        if name == "capped":
            assert (f"{gap['learning_rate_cap']:.3f} is the learning-rate cap at the explored "
                    "maximum") in md and "--lr-beyond-explored" in md
        else:
            assert "learning-rate cap" not in md

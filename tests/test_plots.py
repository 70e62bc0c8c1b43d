"""Figure fixes of issue 11, checked on the data the figures draw (not on pixels)."""

import jax
import numpy as np
import pytest
from matplotlib.figure import Figure

from bayes_scaling import plots, plots_mcmc
from bayes_scaling.law import LawParams, optimal_allocation
from bayes_scaling.runs_io import read_runs
from fake_posterior import FakePosterior


def _runs(tmp_path, rows):
    path = tmp_path / "runs.csv"
    lines = ["d_model,num_layers,num_heads,batch_size,learning_rate,train_flops,loss"]
    lines += [",".join(str(x) for x in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return read_runs(path)


@pytest.fixture
def api_runs(tmp_path):
    rows = [(d, layers, 4, 128, 0.0006, flops, base + (d - 320) ** 2 / 1e5)
            for flops, base in ((10**16, 4.6), (10**17, 4.0))
            for d, layers in ((128, 2), (256, 4), (384, 6), (512, 8))]
    rows.append((768, 12, 12, 128, 0.0004, 10**18, 3.5))  # the largest level: one run
    return _runs(tmp_path, rows)


class CountingPosterior(FakePosterior):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.optimum_calls = 0

    def optimum(self, flops):
        self.optimum_calls += 1
        return super().optimum(flops)


def test_histogram_edges_cover_every_draw_including_outliers():
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.normal(3.0, 0.05, 4000), [2.0, 4.5]])
    b = rng.normal(3.02, 0.08, 4000)
    edges = plots.histogram_edges(a, b)
    assert edges[0] <= min(a.min(), b.min()) and edges[-1] >= max(a.max(), b.max())
    widths = np.diff(edges)
    np.testing.assert_allclose(widths, widths[0])
    counts, _ = np.histogram(np.concatenate([a, b]), bins=edges)
    assert counts.sum() == a.size + b.size  # nothing fell outside
    # a bin width set by the bulk, not by the outliers
    assert widths[0] < np.ptp(np.quantile(b, [0.005, 0.995])) / 20
    # very long tails: fewer, wider bins, still covering everything
    wide = plots.histogram_edges(np.append(b, 1e3), max_bins=100)
    assert wide.size == 101 and wide[0] <= b.min() and wide[-1] >= 1e3


def test_loss_at_target_bins_every_draw_without_edge_spikes():
    rng = np.random.default_rng(1)
    loss_opt = rng.normal(3.0, 0.05, 3000)
    predicted = np.concatenate([rng.normal(3.0, 0.07, 2997), rng.normal(3.9, 0.01, 3)])
    ax = Figure().add_subplot()
    plots.plot_loss_at_target(ax, loss_opt=loss_opt, predicted_loss=predicted,
                              target_flops=1e19)
    left = min(p.get_x() for p in ax.patches)
    right = max(p.get_x() + p.get_width() for p in ax.patches)
    assert left <= min(loss_opt.min(), predicted.min())
    assert right >= max(loss_opt.max(), predicted.max())
    # the end bins hold no more than their share: no pile-up of clipped draws
    heights = sorted(ax.patches, key=lambda p: p.get_x())
    assert heights[0].get_height() < 0.2 * max(p.get_height() for p in ax.patches)
    assert any("beyond the axes" in t.get_text() for t in ax.texts)


def test_isoflop_predictive_draws_every_level_including_a_single_top_run(api_runs):
    ax = Figure().add_subplot()
    plots.plot_isoflop_predictive(ax, jax.random.PRNGKey(0), FakePosterior(lr0=6e-4), api_runs)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(labels) == 3
    assert labels[-1].startswith("1e+18 FLOPs") and "(1 run)" in labels[-1]
    assert "shown" not in ax.get_title()


def test_drawn_levels_keeps_both_ends_and_the_title_says_what_is_left_out(tmp_path):
    level = np.repeat(np.arange(10), [1, 5, 5, 5, 5, 5, 5, 5, 5, 1])
    ids = plots.drawn_levels(level, 4)
    assert ids.size == 4 and ids[0] == 0 and ids[-1] == 9
    rows = [(256, 4, 4, 128, 0.0006, int(f), 4.0) for f in (1e15, 3e15, 6e15, 1e16)]
    ax = Figure().add_subplot()
    plots.plot_isoflop_predictive(ax, jax.random.PRNGKey(0), FakePosterior(lr0=6e-4),
                                  _runs(tmp_path, rows), max_levels=2)
    assert "2 of 4 compute levels shown" in ax.get_title()


def test_allocation_grid_stops_a_little_past_the_target():
    grid = plots.allocation_flops_grid([1e15, 3e17], 1e19)
    assert grid.min() == pytest.approx(1e15) and grid.max() == pytest.approx(2e19)
    assert 1e19 in grid and np.all(np.diff(grid) > 0)


def test_continuous_optimum_is_smooth_matches_the_law_and_costs_one_search(api_runs):
    posterior = CountingPosterior(lr0=6e-4)
    grid = plots.allocation_flops_grid(api_runs.flops, 1e19)
    n_opt = plots.optimal_allocation_curve(posterior, api_runs, grid)
    assert n_opt.shape == (posterior.num_draws, grid.size)
    assert posterior.optimum_calls == 0  # no per-compute shape search
    law = LawParams(**{k: v[:, None] for k, v in posterior.law_params()._asdict().items()})
    exact, _ = optimal_allocation(law, grid[None, :])
    # the fake's law is Chinchilla's in (N, D) with the lr at its optimum: the continuous
    # search along the shape family recovers the closed form per draw
    np.testing.assert_allclose(n_opt, exact, rtol=0.02)
    slope = np.diff(np.log(np.median(n_opt, axis=0))) / np.diff(np.log(grid))
    assert np.all(slope > 0.3) and np.ptp(slope) < 0.05  # smooth: no staircase
    ax = Figure().add_subplot()
    plots.plot_optimal_allocation(ax, posterior, quantity="n_params", data_flops=api_runs.flops,
                                  target_flops=1e19, runs=api_runs, curve=(grid, n_opt))
    assert posterior.optimum_calls == 1  # the target's point only
    assert 1e19 < ax.get_xlim()[1] <= 3e19


def test_trace_rank_and_loop_progress_figures_draw_their_data():
    posterior = FakePosterior()
    names = plots_mcmc.mixing_names(posterior.idata)
    assert names == ["E", "A", "B", "alpha", "beta"]
    fig = Figure()
    axes = plots_mcmc.plot_trace(fig.subplots(len(names), 2), posterior.idata, names)
    titles = [ax.get_title() for ax in axes[:, 1]]
    assert titles == ["E", "log10 A", "log10 B", "alpha", "beta"]
    (trace,) = axes[1, 1].get_lines()[:1]
    np.testing.assert_allclose(trace.get_ydata(), np.log10(posterior.draws["A"]))
    fig = Figure()
    axes = plots_mcmc.plot_ranks(fig.subplots(2, 3), posterior.idata, names)
    assert not axes[1, 2].axison and axes[0, 0].get_title() == "E"
    history = [{"flops_used": 1e16 * 10**i, "n_opt_ci90_ln_width": 2.0 - i / 2,
                "loss_ci90_width": 0.4 - i / 10} for i in range(3)]
    history.append({**history[-1], "n_opt_ci90_ln_width": 0.7, "final": True})
    fig = Figure()
    ax_n, ax_loss = plots_mcmc.plot_loop_progress(fig.subplots(1, 2), history)
    np.testing.assert_allclose(ax_n.get_lines()[0].get_ydata(), [2.0, 1.5, 1.0])
    assert ax_n.collections[0].get_offsets()[0][1] == pytest.approx(0.7)


def _runs_2026():
    from bayes_scaling.candidates2026 import law_features, law_run_config, training_config
    from bayes_scaling.oracle import Observation
    from bayes_scaling.runs_io import runs_from_observations

    configs = [training_config(hidden_size=d, num_layers=layers, head_dim=64,
                               intermediate_size=int(8 * d / 3 / 64) * 64,
                               peak_learning_rate=1e-3, warmup_frac=0.05, batch_size=128,
                               tokens=tokens, max_runtime_seconds=100.0)
               for d, layers, tokens in ((256, 4, 5e7), (384, 6, 1e8), (512, 8, 2e8))]
    return runs_from_observations(
        [Observation(config=law_run_config(c), loss=4.0) for c in configs],
        features=law_features(configs))


def test_the_frontier_of_2026_runs_is_drawn_in_2026_counts():
    from bayes_scaling.count_family import family_2026
    from bayes_scaling.params import non_embedding_params
    from bayes_scaling.params2026 import non_embedding_params_2026

    family = family_2026()
    n = np.geomspace(1e7, 1e9, 9)
    d, layers = plots.shape_for_size(n, 90.0, family)
    np.testing.assert_allclose(non_embedding_params_2026(d, layers, 8 * d / 3, 64), n, rtol=1e-9)
    runs = _runs_2026()
    posterior = FakePosterior(lr0=6e-4)
    features, _ = plots.isoflop_curve_features(posterior, runs, 1e19, n)
    assert features.family == runs.features().family == family
    np.testing.assert_allclose(features.block_params, n, rtol=1e-9)  # the 2026 N, no head
    np.testing.assert_allclose(features.embedding_params, 2 * 32000 * features.d_model)
    assert np.all(features.flops_embedding_params == 0)  # 2026 tokens are exact
    np.testing.assert_allclose(features.num_heads, features.d_model / 64)
    # in 2025 counts (the head inside N) the same N would be far narrower models
    d_2025, _ = plots.shape_for_size(n, 90.0)
    np.testing.assert_allclose(non_embedding_params(d_2025, d_2025 / 90.0), n, rtol=1e-9)
    assert np.all(d_2025 < features.d_model)
    grid = plots.allocation_flops_grid(runs.flops, 1e19)
    n_opt = plots.optimal_allocation_curve(posterior, runs, grid)
    law = LawParams(**{k: v[:, None] for k, v in posterior.law_params()._asdict().items()})
    exact, _ = optimal_allocation(law, grid[None, :])
    np.testing.assert_allclose(n_opt, exact, rtol=0.02)  # the fake law's optimum in its N

import runpy
from pathlib import Path

import pytest

from bayes_scaling.model import PriorConfig

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "make_paper.py"


@pytest.fixture(scope="module")
def make_paper():
    return runpy.run_path(str(SCRIPT))


def test_includes_results_and_demotes_headings(make_paper, tmp_path):
    (tmp_path / "res").mkdir()
    (tmp_path / "res" / "a.md").write_text("# A result\n\n| x |\n|---|\n| 1.5 |\n")
    template = "# Paper\n\n{{include res/a.md}}\n\n{{prior_table}}\n\n{{include res/missing.md}}\n"
    text, missing = make_paper["build"](template, tmp_path)
    assert "### A result" in text and "| 1.5 |" in text
    assert missing == ["res/missing.md"]
    assert f"| `tau_median` | {PriorConfig().tau_median:g} |" in text
    assert "{{" not in text


def test_script_writes_the_paper_and_fails_on_missing_results(make_paper, tmp_path):
    template = tmp_path / "t.md"
    template.write_text("{{include nothing/here.md}}\n")
    out = tmp_path / "paper.md"
    assert make_paper["main"](["--template", str(template), "--out", str(out),
                               "--root", str(tmp_path)]) == 1
    assert "missing" in out.read_text()


def test_committed_paper_is_built_from_the_current_results(make_paper):
    root = SCRIPT.parents[1]
    template = (root / "paper" / "paper.template.md").read_text()
    text, missing = make_paper["build"](template, root)
    assert missing == []
    assert (root / "paper" / "paper.md").read_text() == text, (
        "paper/paper.md is stale: run python experiments/make_paper.py"
    )


def _rows(tmp_path, regrets, budget=2e18):
    """A benchmark rows file: ``regrets[truth][strategy]`` per seed, at one budget."""
    import json

    lines = []
    for truth, by_strategy in regrets.items():
        for strategy, values in by_strategy.items():
            for seed, regret in enumerate(values):
                lines.append(json.dumps({
                    "truth": truth, "strategy": strategy, "seed": seed, "budget": budget,
                    "regret": regret, "n_error": 0.1, "loss_error": 0.05, "lr_error": 0.2,
                    "predicted_ci90": [2.9, 3.1], "ci90_covers_true_loss": regret < 0.02,
                    "design_efficiency": 0.8 if strategy.startswith("active") else 0.5,
                    "seconds": 40.0 if strategy.startswith("active") else 1.0}))
    path = tmp_path / "experiments" / "results" / "benchmark_strategies.rows.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_benchmark_discussion_says_where_the_active_loop_does_not_win(make_paper, tmp_path):
    _rows(tmp_path, {0: {"active:n-opt": [0.001, 0.002], "active:decision": [0.002, 0.003],
                         "random": [0.01, 0.02], "isoflop-grid": [0.03, 0.04]},
                     1: {"active:n-opt": [0.03, 0.05], "active:decision": [0.04, 0.06],
                         "random": [0.004, 0.002], "isoflop-grid": [0.05, 0.06]}})
    text, missing = make_paper["build"]("{{discuss benchmark}}\n\n{{discuss headline}}\n",
                                        tmp_path)
    assert missing == [] and "{{" not in text
    assert "best active criterion is `active:n-opt`" in text
    assert "Where it does not win" in text and "truth 1 (best `random`" in text
    assert "truth 0" not in text.split("Where it does not win")[1].split(".")[0]
    assert "lower pair by pair in 2 of 4" in text  # against random: wins on truth 0 only
    assert "`active:n-opt` has the highest" in text or "`active:decision` has the highest" in text
    assert "0.0160 nats for `active:n-opt`" in text  # the headline's median, computed not typed


def test_criteria_discussion_counts_the_sets_each_criterion_wins(make_paper, tmp_path):
    results = tmp_path / "experiments" / "results"
    sets = {"random_truths_check": {0: {"active:decision": [0.001, 0.002],
                                        "active:n-opt": [0.003, 0.004]}},
            "random_truths_heldout": {8: {"active:decision": [0.01, 0.05],
                                          "active:n-opt": [0.002, 0.003]}},
            "random_truths_fresh": {16: {"active:n-opt": [0.002, 0.003]}}}  # one criterion only
    for stem, regrets in sets.items():
        _rows(tmp_path, regrets).rename(results / f"{stem}.rows.jsonl")
    text, missing = make_paper["build"]("{{discuss criteria}}\n", tmp_path)
    assert missing == []
    assert "| 0-7 | `active:decision` | 2 | 0.0015 | 0.0020 | 0.200 | 2/2 |" in text
    assert "| 16-23 | `active:n-opt` | 2 |" in text and "| 16-23 | `active:decision`" not in text
    # the fresh set has one criterion, so two sets compare; equal lr errors are no win
    assert ("Of the 2 sets, `decision` has the lower median regret on 1, the lower worst regret "
            "on 1 and the lower median \\|ln lr_rec/lr*\\| on 0.") in text


def test_missing_results_are_said_in_the_text(make_paper, tmp_path):
    template = ("{{discuss epoch}}\n\n{{figure experiments/results/figures/x.png | A caption.}}"
                "\n")
    text, missing = make_paper["build"](template, tmp_path)
    assert "no discussion yet" in text and "missing figure" in text
    assert missing == ["experiments/results/epoch_check.md", "experiments/results/figures/x.png"]
    figure = tmp_path / "experiments" / "results" / "figures" / "x.png"
    figure.parent.mkdir(parents=True)
    figure.write_bytes(b"png")
    text, _ = make_paper["build"](template, tmp_path)
    assert "![Figure 1](../experiments/results/figures/x.png)" in text
    assert "*Figure 1. A caption.*" in text


def test_committed_paper_has_no_temporary_paths_or_typed_labels():
    text = (SCRIPT.parents[1] / "paper" / "paper.md").read_text()
    assert "/tmp/" not in text and "commit 6a6ab6f" not in text
    for section in ("## Abstract", "## References"):
        assert section in text
    assert text.count("![Figure") >= 4


def test_paper_figures_script_draws_from_the_committed_results(tmp_path):
    figures = runpy.run_path(str(SCRIPT.with_name("paper_figures.py")))
    results = SCRIPT.parent / "results"
    assert figures["main"](["--results", str(results), "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(figures["FIGURES"])
    assert figures["main"](["--results", str(tmp_path / "none"), "--out", str(tmp_path)]) == 1


def test_pool_discussion_names_the_cells_an_active_strategy_loses(make_paper, tmp_path):
    import json

    rows = [{"pool": "p", "fraction": f, "strategy": s, "r2": r}
            for f, s, r in ((0.01, "active", 0.8), (0.01, "random", 0.5),
                            (0.05, "active", 0.3), (0.05, "random", 0.6),
                            (0.05, "all-data", 0.99))]
    path = tmp_path / "experiments" / "results" / "pool_benchmark.rows.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text, missing = make_paper["build"]("{{discuss pool}}\n", tmp_path)
    assert missing == [] and "in 1." in text
    assert "p at 5% (`random`, R^2 0.600, against 0.300 for `active`)" in text
    assert "all-data" not in text


def test_pool_summary_averages_groups_and_ranks_pools(make_paper, tmp_path):
    import json

    # two Porian pools and one Gadre pool; active-region best in both Porian pools, v-opt in Gadre
    r2 = {("porian:0", "active-region"): 0.9, ("porian:0", "v-opt"): 0.1,
          ("porian:1", "active-region"): 0.5, ("porian:1", "v-opt"): 0.3,
          ("gadre:c4", "active-region"): 0.2, ("gadre:c4", "v-opt"): 0.8}
    rows = [{"pool": p, "fraction": 0.1, "strategy": s, "r2": v, "coverage90": 1.0, "seed": seed}
            for (p, s), v in r2.items() for seed in (0, 1)]
    path = tmp_path / "experiments" / "results" / "pool_benchmark.rows.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text, _ = make_paper["build"]("{{discuss pool}}\n", tmp_path)
    # Porian's R^2 is the mean of its two pools; ranks average over the three pools
    assert "| 10% | `active-region` | 0.700 | 0.200 | 1.33 | 1.00 |" in text
    assert "| 10% | `v-opt` | 0.200 | 0.800 | 1.67 | 1.00 |" in text
    assert "`v-opt`, the default with `--target-rows`, has mean rank 1.67 (2 of 2; best " \
        "`active-region`, 1.33)" in text

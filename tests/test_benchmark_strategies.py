"""experiments/benchmark_strategies.py: statistics on synthetic rows, a tiny run on local Ray, and
(slow) a two-node Ray cluster on this host reached through --address."""

import json

import numpy as np
import pytest

from experiment_scripts import load_script

bench = load_script("benchmark_strategies")


def _row(truth, seed, strategy, regret, budget=5e17):
    return {"truth": truth, "seed": seed, "strategy": strategy, "budget": budget,
            "regret": regret, "n_error": 2 * regret, "loss_error": 0.1, "lr_error": 0.2,
            "predicted_ci90": [2.9, 3.1], "ci90_covers_true_loss": regret < 0.05,
            "flops_used": budget * 0.99, "seconds": 10.0}


def test_labels_and_loop_kwargs():
    labels = bench.strategy_labels(["active", "random"], ["n-opt", "regret"])
    assert labels == ["active:n-opt", "active:regret", "random"]
    kwargs = bench.loop_kwargs("active:n-opt", bench.FULL_SETTINGS, 5e17)
    assert kwargs["strategy"] == "active" and kwargs["budget_flops"] == 5e17
    assert kwargs["criterion"] == "n-opt"  # named although the loop's default is decision
    assert bench.parse_args([]).criteria == ["n-opt", "decision"]
    assert bench.loop_kwargs("active:regret", {}, 2e18)["criterion"] == "regret"
    planned = bench.loop_kwargs("active:decision+c-optimal", {}, 2e18)
    assert planned["criterion"] == "decision" and planned["budget_plan"] == "c-optimal"
    bench.check_specs(["active:decision", "active:n-opt+c-optimal"], bench.TINY_SETTINGS, [2e17])
    with pytest.raises(SystemExit, match="active:n-opt\\+lookahead"):
        bench.check_specs(["active:n-opt+lookahead"], bench.TINY_SETTINGS, [2e17])
    with pytest.raises(SystemExit, match="active:nonsense"):
        bench.check_specs(["active:nonsense"], bench.TINY_SETTINGS, [2e17])
    bench.check_specs(["active:n-opt", "random", "isoflop-grid"], bench.FULL_SETTINGS,
                      [5e17, 2e18])


def test_summary_pairs_runs_with_each_baseline():
    regrets = {"active:n-opt": [0.001, 0.002, 0.004, 0.003],
               "random": [0.010, 0.004, 0.030, 0.012],
               "isoflop-grid": [0.020, 0.030, 0.025, 0.040]}
    rows = [_row(t, s, label, regrets[label][2 * t + s])
            for label in regrets for t in range(2) for s in range(2)]
    rows.append(_row(5, 0, "active:n-opt", 0.5))  # unpaired: in the medians, not in the diffs
    summary, diffs = bench.summarise(rows, list(regrets), [5e17])
    med = {s["strategy"]: s for s in summary}
    assert med["random"]["regret"] == pytest.approx(np.median(regrets["random"]))
    assert med["active:n-opt"]["n"] == 5
    assert med["isoflop-grid"]["covered"] == 4
    assert {(d["strategy"], d["baseline"]) for d in diffs} == {("active:n-opt", "random"),
                                                                ("active:n-opt", "isoflop-grid")}
    for baseline in ("random", "isoflop-grid"):
        entry = next(d for d in diffs if d["baseline"] == baseline)
        assert entry["pairs"] == 4
        paired = np.subtract(regrets["active:n-opt"], regrets[baseline])
        median, lo, hi = entry["regret"]
        assert median == pytest.approx(np.median(paired))
        assert lo <= median <= hi and lo >= paired.min() and hi <= paired.max()
        assert hi < 0  # active is better on every pair
        assert entry["regret_ratio"] == pytest.approx(
            np.median(regrets["active:n-opt"]) / np.median(regrets[baseline]))


def test_an_earlier_rows_file_joins_as_a_baseline_on_the_planned_runs_only(tmp_path):
    earlier = tmp_path / "before.rows.jsonl"
    planned = [_row(t, 0, "active:decision", 0.01 * (t + 1), 2e18) for t in range(3)]
    unplanned = [_row(7, 0, "active:decision", 0.9, 2e18), _row(0, 1, "active:decision", 0.9, 2e18),
                 _row(0, 0, "random", 0.9, 2e18), _row(0, 0, "active:decision", 0.9, 5e17)]
    earlier.write_text("".join(json.dumps({**r, "settings": "full", "family_seed": 0}) + "\n"
                               for r in planned + unplanned))
    got = bench._baseline_rows(earlier, 0, range(3), range(1), ["active:decision"], [2e18])
    assert sorted(r["truth"] for r in got) == [0, 1, 2]
    assert {r["strategy"] for r in got} == {"active:decision@before"}
    now = [_row(t, 0, "active:decision", 0.005 * (t + 1), 2e18) for t in range(3)]
    labels = ["active:decision", "active:decision@before"]
    _, diffs = bench.summarise(now + got, labels, [2e18],
                               baselines=bench.BASELINES + ("active:decision@before",))
    (entry,) = diffs
    assert entry["baseline"] == "active:decision@before" and entry["pairs"] == 3
    assert entry["regret"][0] == pytest.approx(-0.01)  # median of -0.005, -0.01, -0.015
    with pytest.raises(SystemExit, match="no such file"):
        bench._baseline_rows(tmp_path / "none.rows.jsonl", 0, range(3), range(1), [], [2e18])


def test_design_efficiency_median_skips_runs_without_one():
    rows = [{**_row(t, 0, "random", 0.01), "design_efficiency": e}
            for t, e in enumerate([0.2, None, 0.6, 0.4])]
    summary, _ = bench.summarise(rows, ["random"], [5e17])
    assert summary[0]["design_efficiency"] == pytest.approx(0.4)
    rows = [{**row, "design_efficiency": None} for row in rows]
    assert bench.summarise(rows, ["random"], [5e17])[0][0]["design_efficiency"] is None


def test_learning_rate_section_places_the_recommendation_against_both_lr_stars():
    # intervals: the first two hold the truth's 1e-3 at 90%, only the first at 50%
    ci50 = ([9e-4, 1.1e-3], [4e-4, 6e-4], [4e-4, 6e-4])
    ci90 = ([8e-4, 1.2e-3], [3e-4, 1e-3], [3e-4, 8e-4])
    rows = [{**_row(t, 0, "active:decision", 0.01), "learning_rate": rec,
             "true_lr_star": 1e-3, "lr_star_median": post, "lr_star_ci50": ci50[t],
             "lr_star_ci90": ci90[t], "regret_at_lr_star_median": 0.002 * t}
            for t, (rec, post) in enumerate([(2e-3, 1e-3), (1e-3, 5e-4), (5e-4, 5e-4)])]
    rows.append({**_row(9, 0, "active:decision", 0.01), "learning_rate": 1e-3,
                 "true_lr_star": 1e-3, "lr_star_median": None})  # an older row: left out
    lines = bench.learning_rate_section(rows, ["active:decision", "random"], [5e17])
    row = [line for line in lines if line.startswith("| active:decision")]
    ln2 = np.log(2.0)
    # ln(rec/lr*): ln2, 0, -ln2; ln(post/lr*): 0, -ln2, -ln2; ln(rec/post): ln2, ln2, 0
    assert row == [f"| active:decision | 5e+17 | 3 | +0.000 | {ln2:.3f} | 1/3 | -{ln2:.3f} "
                   f"| {ln2:.3f} | 1/3 | 2/3 | +{ln2:.3f} | 0.0100 / 0.0100 | 0.0020 / 0.0040 |"]
    no_intervals = [{k: v for k, v in r.items()
                     if not k.startswith("lr_star_ci") and k != "regret_at_lr_star_median"}
                    for r in rows[:3]]
    row = bench.learning_rate_section(no_intervals, ["active:decision"], [5e17])[-1]
    assert row.endswith(f"| {ln2:.3f} | – | – | +{ln2:.3f} | 0.0100 / 0.0100 | – |")
    assert not any(line.startswith("| random") for line in lines)
    assert bench.learning_rate_section([rows[-1]], ["active:decision"], [5e17]) == []


def test_bootstrap_interval_is_reproducible_and_widens_with_spread():
    rng = np.random.default_rng(0)
    a = bench.bootstrap_median_interval([1.0, 1.1, 0.9, 1.05, 0.95], rng)
    b = bench.bootstrap_median_interval([1.0, 1.1, 0.9, 1.05, 0.95], np.random.default_rng(0))
    wide = bench.bootstrap_median_interval([1.0, 3.0, -1.0, 2.0, 0.0], rng)
    assert a == b
    assert a[0] <= 1.0 <= a[1] and wide[1] - wide[0] > a[1] - a[0]


def test_tiny_run_on_local_ray_resumes(tmp_path):
    # isoflop-grid only (no NUTS) keeps this fast; the slow tier's test_run_cmd runs every
    # strategy through the script with --tiny
    out = tmp_path / "bench.md"
    args = ["--tiny", "--truths", "1", "--truth-offset", "3", "--seeds", "1", "--strategies",
            "isoflop-grid", "--budgets", "1e17", "2e17", "--num-cpus", "2", "--no-progress",
            "--out", str(out)]
    assert bench.main(args) == 0
    rows_path = tmp_path / "bench.rows.jsonl"
    rows = [json.loads(line) for line in rows_path.read_text().splitlines()]
    assert sorted(r["budget"] for r in rows) == [1e17, 2e17]
    for r in rows:
        assert r["family_seed"] == 0 and r["truth"] == 3 and r["strategy"] == "isoflop-grid"
        assert r["flops_used"] <= r["budget"]
        assert r["lr_error"] >= 0 and np.isfinite(r["regret"]) and r["node"]
        assert r["lr_star_median"] is None  # the grid's recommendation has no lr* draws
    text = out.read_text()
    assert text.startswith("# Strategy benchmark (tiny")
    assert "members 3-3 of random family seed 0" in text
    assert "3: E=" in text and "0: E=" not in text  # the values of the member run, only
    assert "| isoflop-grid | 1e+17 | 1 |" in text
    assert "## Learning rate" not in text
    assert (tmp_path / "bench.png").stat().st_size > 1000
    before = rows_path.read_text()
    assert bench.main(args) == 0  # everything done: nothing runs, Ray is not started
    assert rows_path.read_text() == before
    assert "ran 0 of 2 runs" in out.read_text()
    # --report-only says what it did instead: which planned runs the rows file holds
    assert bench.main([*args, "--report-only"]) == 0
    text = out.read_text()
    held = "planned runs are in the rows file (bench.rows.jsonl)"
    assert f"Report only: 2 of 2 {held}; 0 missing." in text
    assert "This invocation ran" not in text and "**Partial:**" not in text
    assert bench.main([*args, "--seeds", "2", "--report-only"]) == 0  # seed 1 never ran
    assert rows_path.read_text() == before
    text = out.read_text()
    assert f"Report only: 2 of 4 {held}; 2 missing." in text
    assert "count only the 2 finished runs, not the 2 missing ones" in text
    # an earlier rows file joins as a baseline; the header still counts this invocation's runs
    earlier = tmp_path / "earlier.rows.jsonl"
    earlier.write_text(before)
    assert bench.main([*args, "--report-only", "--baseline-rows", str(earlier)]) == 0
    text = out.read_text()
    assert f"Report only: 2 of 2 {held}; 0 missing." in text
    assert "| isoflop-grid@earlier | 1e+17 | 1 |" in text


@pytest.mark.slow
def test_two_node_ray_cluster_on_one_host(tmp_path):
    from ray.cluster_utils import Cluster

    # Both nodes run on this machine. Ray 2.60 advertises the host's own interface address;
    # forcing node_ip_address="127.0.0.1" leaves the driver waiting for a GCS at that interface.
    cluster = Cluster(initialize_head=True, connect=False,
                      head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        address = cluster.address
        out = tmp_path / "bench.md"
        assert bench.main(["--tiny", "--truths", "1", "--seeds", "1", "--strategies",
                           "isoflop-grid", "--budgets", "1e17", "2e17", "--address",
                           address, "--no-progress", "--out", str(out)]) == 0
    finally:
        cluster.shutdown()
    rows = [json.loads(line) for line in (tmp_path / "bench.rows.jsonl").read_text()
            .splitlines()]
    assert sorted(r["budget"] for r in rows) == [1e17, 2e17]
    assert len({r["node"] for r in rows}) == 2  # one task on each node
    assert f"address {address}" in out.read_text()

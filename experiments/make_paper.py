"""Build paper/paper.md from paper/paper.template.md and the result files of the experiments.

Every number in the paper comes from a file that a script in experiments/ wrote (or, for the
prior table, from the package's own PriorConfig): the template holds prose only. Directives,
each alone on its line:

- ``{{include PATH}}`` inserts a result file (its headings demoted below the paper's);
- ``{{prior_table}}`` renders the prior hyperparameters from ``bayes_scaling.model.PriorConfig``;
- ``{{figure PATH | CAPTION}}`` embeds a PNG (``experiments/paper_figures.py`` draws them from
  the result files) with a numbered caption;
- ``{{discuss NAME}}`` writes the discussion of a result, its numbers computed here from the
  result file (:data:`DISCUSSIONS`), so the prose never holds a hand-typed number.

A missing result or figure file is said so in the text (and listed; ``main`` then exits 1).

Usage: ``python experiments/make_paper.py [--template T] [--out O] [--root R]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import runpy
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bayes_scaling.model import PriorConfig
from bayes_scaling.pool_loop import DEFAULT_REGION_STRATEGY

ROOT = Path(__file__).resolve().parents[1]
RESULTS = "experiments/results"
_DIRECTIVE = re.compile(
    r"^\{\{(include (?P<path>\S+)|prior_table|figure (?P<figure>\S+) \| (?P<caption>[^}]+)"
    r"|discuss (?P<discuss>[\w-]+))\}\}$",
    re.MULTILINE,
)


def prior_table() -> str:
    """The prior hyperparameters as a markdown table, read from PriorConfig's defaults."""
    rows = ["| hyperparameter | default |", "|---|---|"]
    for field in dataclasses.fields(PriorConfig):
        rows.append(f"| `{field.name}` | {field.default:g} |")
    return "\n".join(rows)


def demote(markdown: str, levels: int = 2) -> str:
    """Push every heading of an included file ``levels`` deeper (so it nests in a section)."""
    return re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) + levels) + " ", markdown,
                  flags=re.MULTILINE)


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every pipe table of a markdown text, as rows of cells (header first, rule dropped)."""
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def _records(table: list[list[str]]) -> list[dict[str, str]]:
    """Rows of a table as mappings by header (the first of repeated header names wins)."""
    header = table[0]
    return [{name: row[i] for i, name in reversed(list(enumerate(header)))} for row in table[1:]]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# --- discussions: each reads its result file(s) and returns markdown prose -------------------


def _json_lines(path: Path) -> list[dict]:
    """The records of a JSON-lines results file (blank lines skipped)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class _Benchmark:
    """A strategy benchmark's JSON rows (``benchmark_strategies.py``), by strategy and budget."""

    def __init__(self, root: Path, stem: str = "benchmark_strategies"):
        self.rows = _json_lines(root / RESULTS / f"{stem}.rows.jsonl")
        self.strategies = list(dict.fromkeys(r["strategy"] for r in self.rows))
        self.budgets = sorted({float(r["budget"]) for r in self.rows}, reverse=True)
        self.truths = list(dict.fromkeys(r["truth"] for r in self.rows))
        self.actives = [s for s in self.strategies if s.startswith("active")]
        self.baselines = [s for s in self.strategies if not s.startswith("active")]

    def runs(self, strategy: str, budget: float) -> dict:
        return {(r["truth"], r["seed"]): r for r in self.rows
                if r["strategy"] == strategy and float(r["budget"]) == budget}

    def median(self, strategy: str, budget: float, key: str) -> float | None:
        values = [r[key] for r in self.runs(strategy, budget).values() if r.get(key) is not None]
        return float(np.median(values)) if values else None

    def best_active(self, budget: float) -> str:
        present = [s for s in self.actives if self.runs(s, budget)]
        return min(present, key=lambda s: self.median(s, budget, "regret"))


def discuss_benchmark(root: Path) -> str:
    """Where each strategy wins and where it does not, from the benchmark's JSON rows."""
    bench = _Benchmark(root)
    bootstrap = runpy.run_path(str(Path(__file__).with_name("benchmark_strategies.py")))[
        "bootstrap_median_interval"]
    rng = np.random.default_rng(0)
    top = bench.budgets[0]
    best = bench.best_active(top)
    ours = bench.runs(best, top)
    text = [f"At {top:.0e} FLOPs the best active criterion is `{best}`, with a median regret of "
            f"{bench.median(best, top, 'regret'):.4f} nats over {len(ours)} (truth, seed) "
            "pairs."]
    for baseline in bench.baselines:
        theirs = bench.runs(baseline, top)
        pairs = sorted(set(ours) & set(theirs))
        if not pairs:
            continue
        diffs = [ours[p]["regret"] - theirs[p]["regret"] for p in pairs]
        lo, hi = bootstrap(diffs, rng)
        ratio = (np.median([ours[p]["regret"] for p in pairs])
                 / max(np.median([theirs[p]["regret"] for p in pairs]), 1e-12))
        verdict = ("excludes zero" if hi < 0 or lo > 0 else "includes zero")
        wins = sum(d < 0 for d in diffs)
        text.append(f"Against `{baseline}` ({np.median([theirs[p]['regret'] for p in pairs]):.4f}"
                    f") its median regret is {ratio:.2f} times as large; it is lower pair by pair"
                    f" in {wins} of {len(pairs)}, and the 90% bootstrap interval of the median "
                    f"paired difference, [{lo:+.4f}, {hi:+.4f}], {verdict}.")
    others = [s for s in bench.strategies if s != best and bench.runs(s, top)]

    def mean_regret(truth, strategy):
        values = [r["regret"] for r in bench.runs(strategy, top).values() if r["truth"] == truth]
        return float(np.mean(values)) if values else float("inf")

    lost = []
    for truth in bench.truths:
        winner = min([best, *others], key=lambda s, t=truth: mean_regret(t, s))
        if winner != best:
            lost.append(f"truth {truth} (best `{winner}`, {mean_regret(truth, winner):.4f} "
                        f"against {mean_regret(truth, best):.4f})")
    text.append("**Where it does not win.** By mean regret over seeds, `" + best + "` is not the "
                "best strategy on " + (_join(lost) if lost else "any truth") + ".")
    for key, label in (("n_error", "size error |ln N / N*|"), ("lr_error", "learning-rate error "
                       "|ln lr / lr*|"), ("loss_error", "error of the predicted loss")):
        mine = bench.median(best, top, key)
        better = [s for s in others if (bench.median(s, top, key) or np.inf) < mine]
        if better:
            text.append(f"On the median {label}, " + _join(
                [f"`{s}` ({bench.median(s, top, key):.3f})" for s in better])
                + f" beats it ({mine:.3f}).")
    cover = {s: (sum(bool(r["ci90_covers_true_loss"]) for r in bench.runs(s, top).values()),
                 len(bench.runs(s, top))) for s in [best, *others]}
    text.append("The 90% interval of the predicted loss covers the true loss in " + _join(
        [f"{c}/{n} runs for `{s}`" for s, (c, n) in cover.items()]) + ".")
    efficiency = {s: bench.median(s, top, "design_efficiency") for s in [best, *others]}
    known = {s: e for s, e in efficiency.items() if e is not None}
    if known:
        leader = max(known, key=known.get)
        text.append("Design efficiency (the optimal design's sd of ln N_opt over the achieved "
                    "one, under the final posterior): median " + _join(
                        [f"{e:.2f} for `{s}`" for s, e in known.items()])
                    + f"; `{leader}` has the highest.")
    if len(bench.budgets) > 1 and "isoflop-grid" in bench.baselines:
        small = bench.budgets[-1]
        small_best = bench.best_active(small)
        grid = bench.median("isoflop-grid", top, "regret")
        mine = bench.median(small_best, small, "regret")
        text.append(f"With a quarter of the budget or less ({small:.0e} FLOPs), `{small_best}` "
                    f"has a median regret of {mine:.4f}, "
                    f"{'no worse than' if mine <= grid else 'worse than'} `isoflop-grid` at "
                    f"{top:.0e} ({grid:.4f}).")
    seconds = {s: bench.median(s, top, "seconds") for s in [best, *others]}
    text.append("A run's wall time (median, shared machine): " + _join(
        [f"{v:.0f} s for `{s}`" for s, v in seconds.items()]) + "; the active loop's refits are "
        "most of its cost (section 7).")
    return " ".join(text)


def discuss_headline(root: Path) -> str:
    """The abstract's sentence on the benchmark: median regret per strategy at the top budget."""
    bench = _Benchmark(root)
    top = bench.budgets[0]
    present = [s for s in bench.strategies if bench.runs(s, top)]
    regret = {s: bench.median(s, top, "regret") for s in present}
    seeds = len({r["seed"] for r in bench.rows})
    return (f"On {len(bench.truths)} truths drawn at random from the simulator's family, "
            f"{seeds} seeds each, at a budget of {top:.0e} FLOPs the median regret of the "
            "recommended configuration is " + _join(
                [f"{regret[s]:.4f} nats for `{s}`" for s in sorted(present, key=regret.get)])
            + " (section 6).")


def discuss_epoch(root: Path) -> str:
    """How many of Epoch's estimates the posterior's intervals contain."""
    text = (root / RESULTS / "epoch_check.md").read_text()
    rows = [r for r in _records(markdown_tables(text)[0]) if r["inside"] in ("True", "False")]
    inside = [r["parameter"] for r in rows if r["inside"] == "True"]
    outside = [r["parameter"] for r in rows if r["inside"] == "False"]
    line = next((x for x in text.splitlines() if x.startswith("r_hat max")), "")
    out = (f"Epoch's point estimate lies inside the posterior 90% interval for {len(inside)} of "
           f"{len(rows)} parameters compared" + (f" (not for {_join(outside)})" if outside
                                                 else "") + ".")
    if line:
        out += f" Sampler diagnostics of that fit: {line.rstrip('.')}."
    out += (" A and B have no comparable published interval here: they are in the model's "
            "centred parameterisation, so the table leaves those cells empty.")
    return out


def discuss_coverage(root: Path) -> str:
    """Coverage on simulated designs, with and without the discrepancy term."""
    text = (root / RESULTS / "simulated_coverage.md").read_text()
    summary = next((x for x in text.splitlines() if x.startswith("N_opt(")), None)
    match = summary and re.search(
        r"90% coverage: (\d+)/(\d+); loss coverage: (\d+)/\d+ \(law only: (\d+)/\d+\)", summary)
    if not match:
        return "*(the summary line of `simulated_coverage.md` was not found)*"
    n_cov, n, loss_cov, law_cov = (int(g) for g in match.groups())
    out = (f"The N_opt interval covered the true optimum in {n_cov} of {n} simulated designs, "
           f"and the predicted loss at the target covered the true loss in {loss_cov} of {n} "
           f"with the extrapolation discrepancy, against {law_cov} of {n} for the law alone.")
    if law_cov < loss_cov:
        out += (" So the law's parameter uncertainty alone is too narrow at the target, beyond "
                "the largest run; the discrepancy term is what makes the loss intervals honest, at "
                "the price of wider ones.")
    return out


def discuss_extrapolation(root: Path) -> str:
    """Held-out coverage of the real-data extrapolation check."""
    text = (root / RESULTS / "extrapolation_check.md").read_text()
    records = _records(markdown_tables(text)[0])
    low = [r["data"] for r in records if float(r["coverage, law only"]) < 0.9]
    totals = re.findall(r"All held-out runs, (law only|with discrepancy): (\d+)/(\d+) covered",
                        text)
    out = []
    if totals:
        out.append("On all held-out runs together, " + _join(
            [f"{kind} covers {a} of {b}" for kind, a, b in totals]) + ".")
    if low:
        out.append("Without the discrepancy the intervals are too narrow on " + _join(
            [f"{d}" for d in low]) + ".")
    over = [r["data"] for r in records if float(r["coverage, with discrepancy"]) >= 1.0]
    if over:
        out.append(f"With it, {len(over)} of {len(records)} data sets are covered completely, "
                   "more than the nominal 90%: the discrepancy's prior is the spread of scales "
                   "across data sets, wide for most of them (section 9).")
    return " ".join(out)


def discuss_rules(root: Path) -> str:
    """Which shape rule regrets less, and where the predictive did not cover."""
    tables = markdown_tables((root / RESULTS / "recommend_rules.md").read_text())
    summary = _records(tables[-1])
    best = min(summary, key=lambda r: float(r["mean regret"]))
    worst = max(summary, key=lambda r: float(r["mean regret"]))
    detail = _records(tables[0])
    missed = [r for r in detail if r["90% covers"] == "False"]
    out = (f"The `{best['rule']}` rule has the lower mean regret ({best['mean regret']} against "
           f"{worst['mean regret']} for `{worst['rule']}`) and the lower worst case "
           f"({best['max regret']} against {worst['max regret']}); it is the default.")
    if missed:
        sources = sorted({r["posterior"].split(",")[0] for r in missed})
        out += (f" In {len(missed)} of {len(detail)} rows the 90% predictive interval of the "
                f"recommended run's loss missed the true loss ({_join(sources)}): a narrow "
                "posterior is not always a right one.")
    return out


def discuss_speed(root: Path) -> str:
    """Refit speed-up and where the time of an active run goes."""
    out = []
    refit = root / RESULTS / "refit_benchmark.md"
    if refit.is_file():
        records = _records(markdown_tables(refit.read_text())[0])
        ratios = [float(r["naive / Refitter"]) for r in records]
        out.append(f"Reusing one compiled sampler makes a refit {min(ratios):.1f} to "
                   f"{max(ratios):.1f} times faster than a fresh numpyro `MCMC` run over "
                   f"{records[0]['runs']} to {records[-1]['runs']} runs.")
    split = root / RESULTS / "time_split.md"
    if split.is_file():
        records = {r["part"]: r for r in _records(markdown_tables(split.read_text())[0])}
        fits = [k for k in records if "fit" in k]
        share = sum(float(records[k]["share"].rstrip("%")) for k in fits)
        out.append(f"In an active run, NUTS fits take {share:.0f}% of the wall time ("
                   + _join([f"{k} {records[k]['share']}" for k in fits])
                   + "); acquisition and the queries themselves are small.")
    return " ".join(out) or "*(no speed results found)*"


def discuss_calibration(root: Path) -> str:
    """How far the default truth is from the real API logs, and where it is close."""
    text = (root / RESULTS / "simulator_calibration.md").read_text()
    records = {r["subset"]: r for r in _records(markdown_tables(text)[0])}
    frontier = next((k for k in records if "frontier" in k), None)
    held = next((k for k in records if "held out" in k), None)
    out = []
    if held:
        out.append(f"Against the held-out 2025 API rows the default truth's mean loss is off by "
                   f"an RMSE of {records[held]['RMSE']} (bias {records[held]['bias']}).")
    if frontier:
        closer = held and float(records[frontier]["RMSE"]) < float(records[held]["RMSE"])
        out.append(f"On the rows near the compute-optimal frontier (subset `{frontier}`) it is "
                   f"{'closer' if closer else 'not closer'}: RMSE {records[frontier]['RMSE']}, "
                   f"bias {records[frontier]['bias']}.")
    out.append("The large errors sit at small compute and at the corners of the API's box, where "
               "the real API was a regressor with plateaus; the benchmarks score the frontier, "
               "which is why the default truth is kept and the refits serve as harder "
               "alternative truths.")
    return " ".join(out)


def discuss_pool(root: Path) -> str:
    """Which strategy predicts the held-out target rows best, per pool and budget (mean R^2)."""
    rows = _json_lines(root / RESULTS / "pool_benchmark.rows.jsonl")
    # the strategies themselves: not all-data, nor the ablations ("active-region (no window)")
    rows = [r for r in rows if r["strategy"] != "all-data" and " (" not in r["strategy"]]
    cells = sorted({(r["pool"], r["fraction"]) for r in rows}, key=lambda c: (c[0], c[1]))
    pools = list(dict.fromkeys(r["pool"] for r in rows))

    def mean_r2(pool, fraction, strategy):
        return float(np.mean([r["r2"] for r in rows if r["pool"] == pool
                              and r["fraction"] == fraction and r["strategy"] == strategy]))

    best, lost = {}, []
    for pool, fraction in cells:
        strategies = list(dict.fromkeys(r["strategy"] for r in rows if r["pool"] == pool
                                        and r["fraction"] == fraction))
        best[(pool, fraction)] = max(strategies, key=lambda s: mean_r2(pool, fraction, s))
        if not best[(pool, fraction)].startswith("active"):
            active = [s for s in strategies if s.startswith("active")]
            top = max(active, key=lambda s: mean_r2(pool, fraction, s)) if active else None
            lost.append(f"{pool} at {fraction:.0%} (`{best[(pool, fraction)]}`, R^2 "
                        f"{mean_r2(pool, fraction, best[(pool, fraction)]):.3f}"
                        + (f", against {mean_r2(pool, fraction, top):.3f} for `{top}`)" if top
                           else ")"))
    wins = len(cells) - len(lost)
    out = (f"Over {len(pools)} pool(s) and {len(cells)} pool-budget cells, an active strategy "
           f"has the highest mean R^2 on the held-out target rows in {wins}.")
    if lost:
        out += " **Where it does not win:** " + "; ".join(lost) + "."
    return out + "\n\n" + _pool_summary(rows)


def _finite_mean(values) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _pool_summary(rows: list[dict]) -> str:
    """Each strategy across the pools at each budget: per-group R^2, mean rank, coverage.

    A pool's score is its mean over seeds; a group's (Porian's 15 configurations, Gadre's three
    data sets) the mean over its pools, so the 15 Porian pools do not outvote the others; the
    rank (1 = best R^2 of the strategies) is averaged over every pool.
    """
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    pools = list(dict.fromkeys(r["pool"] for r in rows))
    groups = list(dict.fromkeys(p.split(":")[0] for p in pools))
    by = defaultdict(list)
    for r in rows:
        by[(r["pool"], r["fraction"], r["strategy"])].append(r)

    def score(pool, fraction, strategy, key):
        cell = by.get((pool, fraction, strategy))
        values = [r[key] for r in cell or () if r.get(key) is not None]
        return float(np.mean(values)) if values else float("nan")

    lines = ["Across pools (R^2 per group: mean over its pools of the mean over seeds; rank: "
             "1 = the best of the strategies' mean R^2 in a pool, averaged over pools; coverage: "
             "90% coverage of the target rows, mean over pools):", ""]
    header = ["budget", "strategy", *[f"R^2 {g}" for g in groups], "mean rank", "coverage"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    ranks_at: dict[float, dict[str, float]] = {}
    for fraction in sorted({r["fraction"] for r in rows}):
        ranks = defaultdict(list)
        for pool in pools:
            present = [s for s in strategies if (pool, fraction, s) in by]
            ordered = sorted(present, key=lambda s: -score(pool, fraction, s, "r2"))
            for k, s in enumerate(ordered, start=1):
                ranks[s].append(k)
        ranks_at[fraction] = {s: float(np.mean(v)) for s, v in ranks.items()}
        for s in sorted(ranks, key=lambda s: ranks_at[fraction][s]):
            per_group = [_finite_mean(score(p, fraction, s, "r2") for p in pools
                                      if p.split(":")[0] == g) for g in groups]
            cover = _finite_mean(score(p, fraction, s, "coverage90") for p in pools)
            lines.append(f"| {fraction:.0%} | `{s}` | "
                         + " | ".join(f"{v:.3f}" for v in per_group)
                         + f" | {ranks_at[fraction][s]:.2f} | {cover:.2f} |")
    top = max(ranks_at)
    order = sorted(ranks_at[top], key=lambda s: ranks_at[top][s])
    default = DEFAULT_REGION_STRATEGY
    if default in order:
        lines += ["", f"At {top:.0%} of the pool cost `{default}`, the default with "
                  f"`--target-rows`, has mean rank {ranks_at[top][default]:.2f} "
                  f"({order.index(default) + 1} of {len(order)}; best `{order[0]}`, "
                  f"{ranks_at[top][order[0]]:.2f})."]
    return "\n".join(lines)


#: The random-truth checks of issue 7: disjoint sets of truths, in the order they were run.
CRITERIA_CHECKS = (("random_truths_check", "0-7"), ("random_truths_heldout", "8-15"),
                   ("random_truths_fresh", "16-23"))


def discuss_criteria(root: Path) -> str:
    """Both acquisition criteria on each disjoint set of random truths at 2e18, as a table."""
    lines = ["| truths | criterion | runs | median regret | worst regret "
             "| median \\|ln lr_rec/lr*\\| | 90% covers |", "|---|---|---|---|---|---|---|"]
    figures = []  # per set with both criteria: {criterion: (median regret, worst, lr error)}
    for stem, label in CRITERIA_CHECKS:
        bench = _Benchmark(root, stem)
        per_set = {}
        for criterion in ("active:decision", "active:n-opt"):
            runs = list(bench.runs(criterion, 2e18).values())
            if not runs:
                continue
            covered = sum(bool(r["ci90_covers_true_loss"]) for r in runs)
            per_set[criterion] = (bench.median(criterion, 2e18, "regret"),
                                  max(r["regret"] for r in runs),
                                  bench.median(criterion, 2e18, "lr_error"))
            median, worst, lr_error = per_set[criterion]
            lines.append(
                f"| {label} | `{criterion}` | {len(runs)} | {median:.4f} | {worst:.4f} "
                f"| {lr_error:.3f} | {covered}/{len(runs)} |")
        if len(per_set) == 2:
            figures.append(per_set)
    if figures:
        wins = [sum(f["active:decision"][k] < f["active:n-opt"][k] for f in figures)
                for k in range(3)]
        lines += ["", f"Of the {len(figures)} sets, `decision` has the lower median regret on "
                  f"{wins[0]}, the lower worst regret on {wins[1]} and the lower median "
                  f"\\|ln lr_rec/lr*\\| on {wins[2]}."]
    return "\n".join(lines)


#: ``{{discuss NAME}}``: the function and the result files it reads (relative to the root).
DISCUSSIONS: dict[str, tuple[Callable[[Path], str], tuple[str, ...]]] = {
    "headline": (discuss_headline, (f"{RESULTS}/benchmark_strategies.rows.jsonl",)),
    "benchmark": (discuss_benchmark, (f"{RESULTS}/benchmark_strategies.rows.jsonl",)),
    "criteria": (discuss_criteria, tuple(f"{RESULTS}/{stem}.rows.jsonl"
                                         for stem, _ in CRITERIA_CHECKS)),
    "epoch": (discuss_epoch, (f"{RESULTS}/epoch_check.md",)),
    "coverage": (discuss_coverage, (f"{RESULTS}/simulated_coverage.md",)),
    "extrapolation": (discuss_extrapolation, (f"{RESULTS}/extrapolation_check.md",)),
    "rules": (discuss_rules, (f"{RESULTS}/recommend_rules.md",)),
    "speed": (discuss_speed, (f"{RESULTS}/refit_benchmark.md", f"{RESULTS}/time_split.md")),
    "calibration": (discuss_calibration, (f"{RESULTS}/simulator_calibration.md",)),
    "pool": (discuss_pool, (f"{RESULTS}/pool_benchmark.rows.jsonl",)),
}


def build(template: str, root: Path) -> tuple[str, list[str]]:
    """Expand the directives of ``template``; returns the text and the missing result files."""
    missing: list[str] = []
    figure_number = 0

    def expand(match: re.Match) -> str:
        nonlocal figure_number
        if match.group("figure"):
            path = match.group("figure")
            if not (root / path).is_file():
                missing.append(path)
                return (f"*(missing figure: `{path}`; run `python experiments/paper_figures.py` "
                        "after the script that writes its results)*")
            figure_number += 1
            caption = match.group("caption").strip()
            return f"![Figure {figure_number}](../{path})\n\n*Figure {figure_number}. {caption}*"
        if match.group("discuss"):
            name = match.group("discuss")
            if name not in DISCUSSIONS:
                raise ValueError(f"{{{{discuss {name}}}}}: expected one of {sorted(DISCUSSIONS)}")
            function, needs = DISCUSSIONS[name]
            absent = [p for p in needs if not (root / p).is_file()]
            if len(absent) == len(needs):
                missing.extend(absent)
                return (f"*(no discussion yet: {', '.join(f'`{p}`' for p in absent)} missing; "
                        "run the script that writes it)*")
            return function(root)
        if match.group("path") is None:
            return prior_table()
        path = root / match.group("path")
        if not path.is_file():
            missing.append(match.group("path"))
            return f"*(missing: `{match.group('path')}`; run the script that writes it)*"
        return demote(path.read_text().strip())

    return _DIRECTIVE.sub(expand, template), missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=ROOT / "paper" / "paper.template.md")
    parser.add_argument("--out", type=Path, default=ROOT / "paper" / "paper.md")
    parser.add_argument("--root", type=Path, default=ROOT, help="where result paths start")
    args = parser.parse_args(argv)
    text, missing = build(args.template.read_text(), args.root)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    for path in missing:
        print(f"missing result file: {path}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())

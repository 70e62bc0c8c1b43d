"""Benchmark the strategies on random truths, every run a Ray task (DESIGN.md §6, issue 10).

Truths: members ``--truth-offset .. --truth-offset + --truths - 1`` (default from 0) of the
random family ``--family-seed`` of :mod:`bayes_scaling.simulator.random_truths` (every DESIGN §3
key varied; an offset selects members held out from those a change was checked on). Each
(truth, seed, strategy, budget) is one Ray task: the local machine by default (``--num-cpus``
workers), ``--address HOST:PORT`` (or ``auto``) for a running cluster whose workers can import
bayes_scaling. Seed ``s`` is the strategy's random key and an offset ``1000 s`` of the truth's
noise seed, so a replicate draws new observation noise too. ``active`` runs once per criterion of
``--criteria`` (default both: ``n-opt``, the expected variance reduction of ln N_opt(target) per
FLOP, and ``decision``, the regret-weighted risk of size, learning rate and loss, the loop's
default; always passed to ``LoopConfig.from_flat(criterion=...)``); a word
``<criterion>+c-optimal`` also sets the budget plan (``budget_plan="c-optimal"``: buy only from
the c-optimal design of the remaining budget).
Each row also keeps the run's design efficiency and oracle sd of ln N_opt (``bayes_scaling.design``;
absent for ``isoflop-grid`` without its Bayesian refit).

Scores (``bayes_scaling.scoring``): regret at the target, N error, loss error, whether the
predicted loss's 90% interval covers the true loss, and ``|ln(lr_rec / lr*_true)|`` with
``lr*_true`` the truth's optimal learning rate of the recommended shape at the target. The table
pairs runs by (truth, seed): medians per strategy and budget (design efficiency included), and,
for each active criterion and each baseline (``random``, ``isoflop-grid``), the ratio of median
regrets and a bootstrap 90% interval of the median paired difference. Figures: regret and interval
width against FLOPs spent. ``--baseline-rows FILE`` adds the runs of another rows file on the same
truths, seeds, strategies and budgets (an earlier benchmark, e.g. before ``--query-head-dim``) as
baselines labelled ``<strategy>@<file stem>``.

Every finished run is appended (and fsynced) to a JSON-lines file beside ``--out``
(``<stem>.rows.jsonl``); a rerun skips the runs already there (``--fresh`` starts over).

    python experiments/benchmark_strategies.py                  # the full default set
    python experiments/benchmark_strategies.py --tiny --truths 1 --seeds 1   # smoke settings
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OUT_DEFAULT = "experiments/results/benchmark_strategies.md"
BASELINES = ("random", "isoflop-grid")
# Full settings: the package defaults (planned 40 queries, budget spent) except cheaper in-loop
# fits (they only rank queries: 120 + 120 draws, 5 queries per refit), a final fit of 2 x (400 +
# 500) draws instead of 4 x (500 + 1000) (the same for every strategy: the final fit and the
# per-draw optimum and recommendation over its draws were most of a run's CPU time).
# isoflop-grid's recommendation comes from its own fits; the Bayesian refit of its runs
# (fit_baseline_posterior, the package default) only gives its design efficiency.
FULL_SETTINGS = dict(num_warmup=120, num_samples=120, queries_per_fit=5,
                     final_num_warmup=400, final_num_samples=500, final_num_chains=2)
TINY_SETTINGS = dict(max_queries=8, planned_queries=8, num_initial=4, num_warmup=10,
                     num_samples=10, final_num_warmup=10, final_num_samples=10,
                     final_num_chains=1, fit_baseline_posterior=False, num_bootstrap=50)
METRICS = ("regret", "n_error", "loss_error", "lr_error")
NUM_BOOTSTRAP = 2000


def strategy_labels(strategies, criteria) -> list[str]:
    """``active`` becomes ``active:<criterion>`` for each criterion; the others stay."""
    labels = []
    for strategy in strategies:
        labels += [f"active:{c}" for c in criteria] if strategy == "active" else [strategy]
    return labels


def loop_kwargs(label: str, settings: dict, budget: float) -> dict:
    """``LoopConfig`` keyword arguments of one task."""
    strategy, _, criterion = label.partition(":")
    criterion, _, plan = criterion.partition("+")
    kwargs = {**settings, "strategy": strategy, "budget_flops": float(budget)}
    if criterion:  # named even where it is the loop's default, so a label means one thing
        kwargs["criterion"] = criterion
    if plan:
        kwargs["budget_plan"] = plan
    return kwargs


def task_key(spec: dict) -> tuple:
    return (spec["settings"], spec["family_seed"], spec["truth"], spec["seed"],
            spec["strategy"], float(spec["budget"]))


def run_task(spec: dict) -> dict:
    """Run one (truth, seed, strategy, budget) and score it; the body of each Ray task."""
    import jax

    from bayes_scaling.api.oracle import open_oracle
    from bayes_scaling.loop import LoopConfig, run_loop
    from bayes_scaling.scoring import evaluate_recommendation
    from bayes_scaling.simulator.evaluation import true_mean_loss
    from bayes_scaling.simulator.inprocess import SimulatedApi
    from bayes_scaling.simulator.random_truths import family_truth
    from bayes_scaling.simulator.truth import Truth, optimal_learning_rate
    from bayes_scaling.summary import equal_tailed

    values = family_truth(spec["family_seed"], spec["truth"])
    truth = Truth.from_mapping({**values, "seed": values["seed"] + 1000 * spec["seed"]})
    config = LoopConfig.from_flat(**loop_kwargs(spec["strategy"], spec["loop_settings"],
                                                spec["budget"]))
    with tempfile.TemporaryDirectory() as tmp:
        api = SimulatedApi(truth, config.budget_flops)
        oracle = open_oracle(api, Path(tmp) / "ledger.sqlite", config.budget_flops)
        start = time.perf_counter()
        try:
            result = run_loop(jax.random.PRNGKey(spec["seed"]), oracle, config)
        finally:
            oracle.close()
        seconds = time.perf_counter() - start
    rec = result.recommendation
    scores = evaluate_recommendation(truth, rec, config.target_flops)
    lr_star = float(optimal_learning_rate(truth, rec.d_model, rec.num_layers,
                                          config.target_flops))
    lo, median, hi = equal_tailed(rec.predicted_loss)
    lr_draws = (rec.intervals or {}).get("learning_rate")
    posterior_lr = {"lr_star_median": None, "lr_star_ci50": None, "lr_star_ci90": None,
                    "regret_at_lr_star_median": None}
    if lr_draws is not None:  # the report's learning_rate_ci50 / _ci90, checked on the truth
        lo50, median50, hi50 = (float(v) for v in equal_tailed(lr_draws, 0.5))
        lo90, _, hi90 = equal_tailed(lr_draws, 0.9)
        posterior_lr.update(lr_star_median=median50, lr_star_ci50=[lo50, hi50],
                            lr_star_ci90=[float(lo90), float(hi90)])
        # the regret had the recommendation trained at that median instead (same shape, batch)
        at_median = dataclasses.replace(rec.config(), learning_rate=median50)
        posterior_lr["regret_at_lr_star_median"] = float(
            true_mean_loss(truth, at_median, config.target_flops)
            - scores["true_optimum_loss"])
    return {
        **{k: spec[k] for k in ("settings", "family_seed", "truth", "seed", "strategy")},
        "budget": float(spec["budget"]),
        "n_runs": len(result.observations),
        "flops_used": result.flops_used,
        "largest_run": max(o.config.train_flops for o in result.observations),
        "stop_reason": result.stop_reason,
        "seconds": seconds,
        "cpu_seconds": result.timings.get("cpu_total"),
        "true_loss": scores["true_loss_of_recommended"],
        "predicted_median": float(median),
        "predicted_ci90": [float(lo), float(hi)],
        "learning_rate": rec.learning_rate,
        "true_lr_star": lr_star,
        "lr_error": abs(math.log(rec.learning_rate / lr_star)),
        # the posterior median and 50/90% intervals of lr* at the recommended shape and batch
        # (report.json's learning_rate_ci50 / _ci90); the recommendation minimises expected
        # loss, so it may sit off this median (learning_rate_section)
        **posterior_lr,
        "history": [{k: h.get(k) for k in ("flops_used", "n_opt_ci90_ln_width",
                                            "loss_ci90_width")} for h in result.history],
        **{k: scores[k] for k in ("regret", "n_error", "loss_error", "ci90_covers_true_loss")},
        **{k: result.extra.get(k) for k in ("design_efficiency", "oracle_sd_ln_n_opt")},
    }


def _task_on_node(spec: dict) -> dict:
    """:func:`run_task` inside a Ray worker; the row also names the node that ran it."""
    import ray

    return {**run_task(spec), "node": ray.get_runtime_context().get_node_id()}


def check_specs(labels, settings, budgets) -> None:
    """Build every task's ``LoopConfig`` up front: a bad criterion fails here, in one line."""
    from bayes_scaling.loop import LoopConfig

    for label in labels:
        for budget in budgets:
            try:
                LoopConfig.from_flat(**loop_kwargs(label, settings, budget))
            except (TypeError, ValueError) as exc:
                raise SystemExit(f"benchmark_strategies: {label} at {budget:.0e}: {exc}") from None


def read_rows(path: Path) -> dict:
    """Finished rows by task key; rows of the old hand-picked truths are dropped from the file."""
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    kept = [row for row in rows if "family_seed" in row]
    if len(kept) < len(rows):
        from bayes_scaling.files import atomic_write_text

        atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in kept))
    return {task_key(row): row for row in kept}


def append_row(path: Path, row: dict) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def run_tasks(specs: list[dict], *, address, num_cpus, rows_path: Path, progress=True) -> list:
    """Run ``specs`` as Ray tasks, appending each finished row to ``rows_path``; returns rows."""
    import ray
    from tqdm import tqdm

    from bayes_scaling.fanout import init_ray

    init_ray(num_cpus, address)
    rows = []
    try:
        remote = ray.remote(num_cpus=1, max_retries=1)(_task_on_node)
        pending = {remote.remote(spec): spec for spec in specs}
        with tqdm(total=len(specs), unit="run", disable=not progress, file=sys.stderr,
                  dynamic_ncols=True) as bar:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                spec = pending.pop(ready[0])
                row = ray.get(ready[0])
                append_row(rows_path, row)
                rows.append(row)
                bar.set_postfix_str(f"{spec['strategy']} truth {spec['truth']} seed "
                                    f"{spec['seed']} {spec['budget']:.0e}: regret "
                                    f"{row['regret']:.4f}, {row['seconds']:.0f} s")
                bar.update(1)
    finally:
        ray.shutdown()
    return rows


def bootstrap_median_interval(diffs, rng, num=NUM_BOOTSTRAP) -> tuple[float, float]:
    """90% percentile-bootstrap interval of the median of paired differences."""
    from bayes_scaling.summary import equal_tailed

    diffs = np.asarray(diffs, np.float64)
    idx = rng.integers(0, len(diffs), size=(num, len(diffs)))
    medians = np.median(diffs[idx], axis=1)
    lo, _, hi = equal_tailed(medians)
    return float(lo), float(hi)


def summarise(rows: list[dict], labels: list[str], budgets: list[float], seed: int = 0,
              baselines: tuple[str, ...] = BASELINES):
    """Per (label, budget) medians, and paired differences of each strategy to each baseline."""
    rng = np.random.default_rng(seed)
    summary, diffs = [], []
    for budget in budgets:
        by_label = {label: {(r["truth"], r["seed"]): r for r in rows
                            if r["strategy"] == label and r["budget"] == budget}
                    for label in labels}
        for label, runs in by_label.items():
            if runs:
                vals = list(runs.values())
                summary.append({
                    "strategy": label, "budget": budget, "n": len(vals),
                    **{m: float(np.median([r[m] for r in vals])) for m in METRICS},
                    "regret_max": float(max(r["regret"] for r in vals)),
                    "ci90_width": float(np.median([r["predicted_ci90"][1]
                                                   - r["predicted_ci90"][0] for r in vals])),
                    "covered": sum(bool(r["ci90_covers_true_loss"]) for r in vals),
                    "flops_used": float(np.median([r["flops_used"] for r in vals])),
                    "seconds": float(np.median([r["seconds"] for r in vals])),
                    "design_efficiency": _median_present(vals, "design_efficiency"),
                })
        present = [b for b in baselines if by_label.get(b)]
        if not present:
            continue
        for baseline in present:
            base = by_label[baseline]
            for label, runs in by_label.items():
                pairs = sorted(set(runs) & set(base))
                if label in baselines or not pairs:
                    continue
                entry = {"strategy": label, "baseline": baseline, "budget": budget,
                         "pairs": len(pairs),
                         "regret_ratio": float(np.median([runs[p]["regret"] for p in pairs])
                                               / max(np.median([base[p]["regret"]
                                                                for p in pairs]), 1e-12))}
                for metric in ("regret", "n_error", "loss_error"):
                    d = [runs[p][metric] - base[p][metric] for p in pairs]
                    entry[metric] = (float(np.median(d)), *bootstrap_median_interval(d, rng))
                diffs.append(entry)
    return summary, diffs


def _median_present(rows: list[dict], key: str) -> float | None:
    """Median of ``key`` over the rows that have it (None when none has it)."""
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(np.median(values)) if values else None


def _baseline_rows(path: Path, family_seed: int, members, seeds, labels, budgets) -> list:
    """The runs of ``path`` that this invocation also plans, relabelled ``<strategy>@<stem>``."""
    if not path.is_file():
        raise SystemExit(f"benchmark_strategies: --baseline-rows {path}: no such file")
    tag = path.name.removesuffix(".rows.jsonl")
    return [{**row, "strategy": f"{row['strategy']}@{tag}"} for row in read_rows(path).values()
            if row["family_seed"] == family_seed and row["truth"] in members
            and row["seed"] in seeds and row["strategy"] in labels
            and row["budget"] in budgets]


def plot(rows: list[dict], labels: list[str], path: Path) -> None:
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    from bayes_scaling.files import save_figure

    fig = Figure(figsize=(11, 4.2))
    ax_regret, ax_width = fig.subplots(1, 2)
    colors = {label: f"C{i}" for i, label in enumerate(labels)}
    for label in labels:
        sub = [r for r in rows if r["strategy"] == label]
        if not sub:
            continue
        x = np.array([r["flops_used"] for r in sub])
        ax_regret.scatter(x, [max(r["regret"], 1e-5) for r in sub], s=14, alpha=0.5,
                          color=colors[label])
        budgets = sorted({r["budget"] for r in sub})
        med_x = [np.median([r["flops_used"] for r in sub if r["budget"] == b]) for b in budgets]
        med = [max(np.median([r["regret"] for r in sub if r["budget"] == b]), 1e-5)
               for b in budgets]
        ax_regret.plot(med_x, med, "o-", color=colors[label], label=f"{label} (median)")
        for r in sub:
            hist = [h for h in r["history"] if h.get("n_opt_ci90_ln_width") is not None]
            if len(hist) > 1:
                ax_width.plot([h["flops_used"] for h in hist],
                              [h["n_opt_ci90_ln_width"] for h in hist], color=colors[label],
                              alpha=0.25, lw=0.8)
            if hist:
                ax_width.scatter(hist[-1]["flops_used"], hist[-1]["n_opt_ci90_ln_width"],
                                 color=colors[label], s=14)
        ax_width.plot([], [], color=colors[label], label=label)
    ax_regret.set(xscale="log", yscale="log", xlabel="FLOPs spent",
                  ylabel="regret at 1e19 (nats; floor 1e-5)", title="Regret")
    ax_width.set(xscale="log", xlabel="FLOPs spent", ylabel="90% interval width of ln N_opt(1e19)",
                 title="Interval width (lines: active's fits along the way)")
    budgets = [r["budget"] for r in rows]
    if budgets:
        for ax in (ax_regret, ax_width):
            ax.set_xlim(min(1e16, min(budgets) / 4), max(budgets) * 2)
            ax.xaxis.set_minor_formatter(NullFormatter())
    ax_regret.legend(fontsize=7)
    ax_width.legend(fontsize=7)
    save_figure(fig, path)


def learning_rate_section(rows, labels, budgets) -> list[str]:
    """Where the recommended learning rate sits: against the truth's lr* and the posterior's.

    Only rows that carry ``lr_star_median`` (the posterior median of lr* at the recommended
    shape and batch) count. Signed logs: positive is above. The truth's loss has a kink at its
    lr* (``truth.mean_loss``): below it the finite-step term rises with nonzero slope in
    ``ln lr``, above it the high-lr term rises quadratically from zero slope, so under
    uncertainty the lowest expected loss lies above the median lr*; the last column is that
    offset. The coverage columns check the report's ``learning_rate_ci50`` / ``_ci90``, and the
    last two compare the regret with the regret at the posterior median lr* (rows without them
    show '–').
    """
    lines = []
    for budget in budgets:
        for label in labels:
            sub = [r for r in rows if r["strategy"] == label and r["budget"] == budget
                   and r.get("lr_star_median")]
            if not sub:
                continue
            rec = np.log([r["learning_rate"] / r["true_lr_star"] for r in sub])
            post = np.log([r["lr_star_median"] / r["true_lr_star"] for r in sub])
            offset = np.log([r["learning_rate"] / r["lr_star_median"] for r in sub])
            lines.append(
                f"| {label} | {budget:.0e} | {len(sub)} | {np.median(rec):+.3f} | "
                f"{np.median(np.abs(rec)):.3f} | {int((rec > 0).sum())}/{len(sub)} | "
                f"{np.median(post):+.3f} | {np.median(np.abs(post)):.3f} | "
                f"{_covered(sub, 'lr_star_ci50')} | {_covered(sub, 'lr_star_ci90')} | "
                f"{np.median(offset):+.3f} | {_regrets(sub, 'regret')} | "
                f"{_regrets(sub, 'regret_at_lr_star_median')} |")
    if not lines:
        return []
    return ["", "## Learning rate (medians over (truth, seed))", "",
            "Logs of ratios; positive is above. lr*: the truth's optimal learning rate of the "
            "recommended shape at the target; posterior lr*: the posterior median of it. The "
            "truth's loss rises with nonzero slope in ln lr below lr* and from zero slope above "
            "it, so the expected-loss choice sits above the median lr* when lr* is uncertain "
            "(ln(lr_rec/posterior lr*)); the last columns compare the regret of the "
            "recommendation with the regret had it trained at the posterior median lr* (same "
            "shape and batch).", "",
            "| strategy | budget | runs | ln(lr_rec/lr*) | \\|ln(lr_rec/lr*)\\| | above lr* | "
            "ln(posterior lr*/lr*) | \\|ln(posterior lr*/lr*)\\| | posterior 50% covers lr* | "
            "posterior 90% covers lr* | ln(lr_rec/posterior lr*) | regret, median / worst | "
            "regret at posterior lr*, median / worst |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|", *lines]


def _regrets(rows, key: str) -> str:
    """Median and worst of ``key`` over the rows that have it ('–': none has)."""
    values = [r[key] for r in rows if r.get(key) is not None]
    return f"{np.median(values):.4f} / {max(values):.4f}" if values else "–"


def _covered(rows, key: str) -> str:
    """How many of ``rows`` hold the truth's lr* inside interval ``key`` ('–': none has one)."""
    held = [r for r in rows if r.get(key)]
    if not held:
        return "–"
    inside = sum(r[key][0] <= r["true_lr_star"] <= r[key][1] for r in held)
    return f"{inside}/{len(held)}"


def render(rows, labels, budgets, header: str, figure: str | None,
           baselines: tuple[str, ...] = BASELINES) -> str:
    summary, diffs = summarise(rows, labels, budgets, baselines=baselines)
    lines = [header, "", "## Per strategy and budget (medians over (truth, seed))", "",
             "| strategy | budget | runs | regret | worst regret | N error | loss error | "
             "\\|ln lr_rec/lr*\\| | ci90 width | ci90 coverage | design efficiency | "
             "FLOPs used | seconds/run |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        efficiency = "–" if s["design_efficiency"] is None else f"{s['design_efficiency']:.2f}"
        lines.append(
            f"| {s['strategy']} | {s['budget']:.0e} | {s['n']} | {s['regret']:.4f} | "
            f"{s['regret_max']:.4f} | {s['n_error']:.3f} | {s['loss_error']:.3f} | "
            f"{s['lr_error']:.3f} | "
            f"{s['ci90_width']:.3f} | {s['covered']}/{s['n']} | {efficiency} | "
            f"{s['flops_used']:.3g} | {s['seconds']:.0f} |")
    if diffs:
        lines += ["", "## Paired differences to each baseline", "",
                  "Median over (truth, seed) pairs of strategy minus baseline, with a 90% "
                  f"bootstrap interval ({NUM_BOOTSTRAP} resamples of the pairs); negative is "
                  "better than the baseline. *Regret ratio*: the strategy's median regret over "
                  "the baseline's, on the same pairs.", "",
                  "| strategy | baseline | budget | pairs | regret ratio | regret | N error | "
                  "loss error |",
                  "|---|---|---|---|---|---|---|---|"]
        for d in diffs:
            cells = [f"{d[m][0]:+.4f} [{d[m][1]:+.4f}, {d[m][2]:+.4f}]"
                     for m in ("regret", "n_error", "loss_error")]
            lines.append(f"| {d['strategy']} | {d['baseline']} | {d['budget']:.0e} | "
                         f"{d['pairs']} | {d['regret_ratio']:.2f} | " + " | ".join(cells) + " |")
    lines += learning_rate_section(rows, labels, budgets)
    lines += ["", "## Runs", "",
              "| truth | seed | strategy | budget | runs | FLOPs used | largest run | regret | "
              "N error | \\|ln lr_rec/lr*\\| | true loss | predicted [ci90] | covers | seconds |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["budget"], r["truth"], r["seed"], r["strategy"])):
        lo, hi = r["predicted_ci90"]
        lines.append(
            f"| {r['truth']} | {r['seed']} | {r['strategy']} | {r['budget']:.0e} | "
            f"{r['n_runs']} | {r['flops_used']:.3g} | {r['largest_run']:.0e} | "
            f"{r['regret']:.4f} | {r['n_error']:.3f} | {r['lr_error']:.3f} | "
            f"{r['true_loss']:.3f} | {r['predicted_median']:.3f} [{lo:.3f}, {hi:.3f}] | "
            f"{'yes' if r['ci90_covers_true_loss'] else 'no'} | {r['seconds']:.0f} |")
    if figure:
        lines += ["", f"![regret and interval width against FLOPs spent]({figure})"]
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="smoke-test settings")
    parser.add_argument("--family-seed", type=int, default=0,
                        help="seed of the random truth family (default 0)")
    parser.add_argument("--truths", type=int, default=10,
                        help="how many members (default 10): OFFSET..OFFSET+N-1")
    parser.add_argument("--truth-offset", type=int, default=0,
                        help="first member of the family (default 0)")
    parser.add_argument("--seeds", type=int, default=2, help="replicates (default 2)")
    parser.add_argument("--strategies", nargs="+", default=["active", *BASELINES])
    parser.add_argument("--criteria", nargs="+", default=["n-opt", "decision"],
                        help="acquisition criteria of the active strategy (default: both, "
                        "n-opt and decision)")
    parser.add_argument("--budgets", nargs="+", type=float, default=None,
                        help="budgets in FLOPs (default 5e17 2e18; --tiny: 2e17)")
    parser.add_argument("--address", default=None,
                        help="Ray cluster address (HOST:PORT or 'auto'); default: local Ray")
    parser.add_argument("--num-cpus", type=int, default=None,
                        help="local Ray workers (default: every core)")
    parser.add_argument("--out", default=OUT_DEFAULT)
    parser.add_argument("--rows", default=None,
                        help="JSON-lines file of finished runs (default <stem>.rows.jsonl "
                        "beside --out); a rerun skips the runs in it")
    parser.add_argument("--fresh", action="store_true", help="discard --rows and start over")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: write the table from the finished rows (the header "
                             "counts the planned runs that are missing)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--query-head-dim", type=int, default=None,
                        help="candidate queries only at the head count nearest this head "
                        "dimension (CandidateConfig.head_dim; default: every head count)")
    parser.add_argument("--baseline-rows", default=None,
                        help="rows file of an earlier benchmark: its runs of the same truths, "
                        "seeds, strategies and budgets join as baselines '<strategy>@<stem>'")
    parser.add_argument("--note", default="", help="a line for the header (e.g. the commit)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    settings_name = "tiny" if args.tiny else "full"
    settings = TINY_SETTINGS if args.tiny else FULL_SETTINGS
    if args.query_head_dim is not None:
        settings = {**settings, "query_head_dim": args.query_head_dim}
        settings_name += f"-hd{args.query_head_dim}"
    budgets = args.budgets or ([2e17] if args.tiny else [5e17, 2e18])
    labels = strategy_labels(args.strategies, args.criteria)
    check_specs(labels, settings, budgets)
    if args.truths < 1 or args.truth_offset < 0:
        raise SystemExit(f"benchmark_strategies: --truths >= 1 and --truth-offset >= 0 expected, "
                         f"got {args.truths} and {args.truth_offset}")
    members = range(args.truth_offset, args.truth_offset + args.truths)
    out = Path(args.out)
    rows_path = Path(args.rows) if args.rows else out.with_name(out.stem + ".rows.jsonl")
    rows_path.parent.mkdir(parents=True, exist_ok=True)
    if args.fresh:
        rows_path.unlink(missing_ok=True)
    done = read_rows(rows_path)
    specs, rows = [], []
    for budget in budgets:
        for truth in members:
            for seed in range(args.seeds):
                for label in labels:
                    spec = {"settings": settings_name, "family_seed": args.family_seed,
                            "truth": truth, "seed": seed, "strategy": label,
                            "budget": float(budget), "loop_settings": settings}
                    if task_key(spec) in done:
                        rows.append(done[task_key(spec)])
                    else:
                        specs.append(spec)
    print(f"{len(rows)} runs already in {rows_path}, {len(specs)} to run", flush=True)
    missing = len(specs) if args.report_only else 0
    if args.report_only:
        specs = []
    start = time.perf_counter()
    if specs:
        rows += run_tasks(specs, address=args.address, num_cpus=args.num_cpus,
                          rows_path=rows_path, progress=not args.no_progress)
    wall = time.perf_counter() - start
    planned = len(rows)  # this invocation's runs, before any --baseline-rows join
    baselines = BASELINES
    if args.baseline_rows:
        earlier = _baseline_rows(Path(args.baseline_rows), args.family_seed, members,
                                 range(args.seeds), labels, budgets)
        added = sorted({r["strategy"] for r in earlier})
        rows, labels, baselines = rows + earlier, labels + added, BASELINES + tuple(added)
    for row in rows:
        if row["flops_used"] > row["budget"]:
            raise SystemExit(f"{row['strategy']} overspent: {row['flops_used']}")
    figure = out.with_suffix(".png")
    plot(rows, labels, figure)
    from bayes_scaling.simulator.random_truths import family_truth

    if args.report_only:
        invocation = (f"Report only: {planned} of {planned + missing} planned runs are in "
                      f"the rows file ({rows_path.name}); {missing} missing.")
    else:
        invocation = (f"This invocation ran {len(specs)} of {planned} runs in {wall:.0f} s "
                      f"wall (address {args.address or 'local'}).")
    header = (
        f"# Strategy benchmark ({'tiny smoke settings' if args.tiny else 'full settings'})\n\n"
        f"Truths: members {members[0]}-{members[-1]} of random family seed {args.family_seed} "
        f"(bayes_scaling.simulator.random_truths); seeds 0-{args.seeds - 1}; budgets "
        f"{', '.join(f'{b:.0e}' for b in budgets)}; target 1e19; loop settings {settings}. "
        f"{invocation}\n\nTruth values: "
        + "; ".join(
            f"{i}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                 for k, v in family_truth(args.family_seed, i).items()
                                 if k != "L_init")
            for i in members))
    if missing:
        header += (f"\n\n**Partial:** the medians and pairs below count only the {planned} "
                   f"finished runs, not the {missing} missing ones.")
    if args.note:
        header += f"\n\n{args.note}"
    text = render(rows, labels, budgets, header, figure.name, baselines)
    print(text)
    from bayes_scaling.files import atomic_write_text

    atomic_write_text(out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

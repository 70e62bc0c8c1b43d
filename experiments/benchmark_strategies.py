"""Benchmark the strategies (active, isoflop-grid, random) on simulated truths (DESIGN.md §6).

Five truths that differ from the default (E, A, B, alpha, beta, eta0, a_eta, omega, lam varied
within plausible ranges) x seeds; every strategy gets the same budget. Scores: regret at the
target vs ``simulator.evaluation.true_optimum``, N error, loss error and whether the predicted
loss's 90% interval covers the recommendation's true mean loss. Seed ``s`` is both the
strategy's random key and an offset ``1000 s`` of the truth's noise seed. Prints the table and
the medians and writes experiments/results/benchmark_strategies.md (or --out). Every run is
appended to a JSON-lines file (--rows, default beside --out: ``<stem>.rows.jsonl``), and
``--resume`` skips the runs already there, so an interrupted benchmark continues.

    python experiments/benchmark_strategies.py            # full (about 30 min on 2 cores)
    python experiments/benchmark_strategies.py --tiny     # smoke test settings
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from bayes_scaling.api.oracle import open_oracle
from bayes_scaling.files import atomic_write_text
from bayes_scaling.loop import STRATEGIES, LoopConfig, run_loop
from bayes_scaling.scoring import evaluate_recommendation
from bayes_scaling.simulator.inprocess import SimulatedApi
from bayes_scaling.simulator.truth import Truth
from bayes_scaling.summary import equal_tailed

TRUTHS = {
    "lowE-steepN": dict(E=1.6, A=420.0, alpha=0.37, B=500.0, beta=0.34, seed=11),
    "highE-flatN": dict(E=2.0, A=300.0, alpha=0.32, B=620.0, beta=0.38, seed=12),
    "lr-shift": dict(eta0=9e-4, a_eta=0.25, A=380.0, beta=0.355, seed=13),
    "emb-counts": dict(omega=0.5, lam=0.6, alpha=0.335, B=600.0, seed=14),
    "data-hungry": dict(E=1.75, B=700.0, beta=0.35, alpha=0.36, eta0=5e-4, a_eta=0.4, seed=15),
}


# Full settings: the package defaults (planned 40 queries, budget spent, final fit 4 x (500 +
# 1000)) except cheaper in-loop fits (they only rank queries: 120 + 120 draws, 5 queries per
# refit), so that 30 runs fit in about half an hour on 2 shared cores.
FULL_SETTINGS = dict(budget_flops=2e18, num_warmup=120, num_samples=120, queries_per_fit=5,
                     fit_baseline_posterior=False)


def run_one(truth: Truth, strategy: str, seed: int, config_kwargs: dict) -> dict:
    config = LoopConfig.from_flat(strategy=strategy, **config_kwargs)
    with tempfile.TemporaryDirectory() as tmp:
        api = SimulatedApi(truth, config.budget_flops)
        oracle = open_oracle(api, Path(tmp) / "ledger.sqlite", config.budget_flops)
        start = time.perf_counter()
        try:
            result = run_loop(jax.random.PRNGKey(seed), oracle, config)
        finally:
            oracle.close()
        seconds = time.perf_counter() - start
    scores = evaluate_recommendation(truth, result.recommendation, config.target_flops)
    predicted = np.asarray(result.recommendation.predicted_loss, np.float64)
    lo, median, hi = equal_tailed(predicted)
    return {
        "strategy": strategy,
        "seed": seed,
        "n_runs": len(result.observations),
        "flops_used": result.flops_used,
        "largest_run": max(o.config.train_flops for o in result.observations),
        "budget": config.budget_flops,
        "stop_reason": result.stop_reason,
        "seconds": seconds,
        "true_loss": scores["true_loss_of_recommended"],
        "predicted_median": float(median),
        "predicted_ci90": [float(lo), float(hi)],
        **{k: scores[k] for k in ("regret", "n_error", "loss_error", "ci90_covers_true_loss")},
    }


def render(rows: list[dict], header: str) -> str:
    lines = [header, "", "| truth | strategy | seed | runs | FLOPs used | largest run | regret | "
             "N error | true loss | predicted [ci90] | loss error | ci90 covers | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lo, hi = r["predicted_ci90"]
        lines.append(
            f"| {r['truth']} | {r['strategy']} | {r['seed']} | {r['n_runs']} | "
            f"{r['flops_used']:.3g} | {r['largest_run']:.0e} | {r['regret']:.4f} | "
            f"{r['n_error']:.3f} | {r['true_loss']:.3f} | {r['predicted_median']:.3f} "
            f"[{lo:.3f}, {hi:.3f}] | {r['loss_error']:.3f} | "
            f"{'yes' if r['ci90_covers_true_loss'] else 'no'} | {r['seconds']:.0f} |"
        )
    lines += ["", "| strategy | median regret | median N error | median loss error | "
              "median ci90 width | ci90 coverage |", "|---|---|---|---|---|---|"]
    for strategy in STRATEGIES:
        sub = [r for r in rows if r["strategy"] == strategy]
        if not sub:
            continue
        covered = sum(r["ci90_covers_true_loss"] for r in sub)
        lines.append(
            f"| {strategy} | {np.median([r['regret'] for r in sub]):.4f} | "
            f"{np.median([r['n_error'] for r in sub]):.3f} | "
            f"{np.median([r['loss_error'] for r in sub]):.3f} | "
            f"{np.median([r['predicted_ci90'][1] - r['predicted_ci90'][0] for r in sub]):.3f} | "
            f"{covered}/{len(sub)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="smoke-test settings")
    parser.add_argument("--truths", type=int, default=len(TRUTHS), help="how many truths")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--out", default="experiments/results/benchmark_strategies.md")
    parser.add_argument("--rows", default=None,
                        help="JSON-lines file of finished runs, appended to (default: beside "
                        "--out, <stem>.rows.jsonl)")
    parser.add_argument("--note", default="", help="a line for the header (e.g. the commit)")
    parser.add_argument("--resume", action="store_true",
                        help="skip the runs already in --rows")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.tiny:
        kwargs = dict(budget_flops=2e17, max_queries=8, planned_queries=8, num_initial=4,
                      num_warmup=10, num_samples=10, final_num_warmup=10, final_num_samples=10,
                      final_num_chains=1, fit_baseline_posterior=False, num_bootstrap=50)
    else:
        kwargs = FULL_SETTINGS
    out = Path(args.out)
    rows_path = Path(args.rows) if args.rows else out.with_name(out.stem + ".rows.jsonl")
    rows_path.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if args.resume and rows_path.is_file():
        for line in rows_path.read_text().splitlines():
            row = json.loads(line)
            done[(row["truth"], row["seed"], row["strategy"])] = row
    elif rows_path.is_file():
        rows_path.unlink()
    rows = []
    for name, values in list(TRUTHS.items())[: args.truths]:
        for seed in range(args.seeds):
            # A replicate draws new observation noise as well as new strategy randomness, so the
            # fixed isoflop-grid design is not scored twice on the same losses.
            truth = Truth.from_mapping({**values, "seed": values["seed"] + 1000 * seed})
            for strategy in args.strategies:
                row = done.get((name, seed, strategy))
                if row is None:
                    row = {"truth": name, **run_one(truth, strategy, seed, kwargs)}
                    with rows_path.open("a") as handle:
                        handle.write(json.dumps(row) + "\n")
                print(f"{name} seed {seed} {strategy}: regret {row['regret']:.4f}, N error "
                      f"{row['n_error']:.3f}, covers {row['ci90_covers_true_loss']}, "
                      f"{row['n_runs']} runs, {row['flops_used']:.3g} FLOPs, "
                      f"{row['seconds']:.0f} s", flush=True)
                if row["flops_used"] > row["budget"]:
                    raise SystemExit(f"{strategy} overspent: {row['flops_used']}")
                rows.append(row)
    header = (f"# Strategy benchmark ({'tiny smoke settings' if args.tiny else 'full settings'})"
              f"\n\nSettings: {kwargs}; target 1e19; truths: "
              + "; ".join(f"{k}={v}" for k, v in list(TRUTHS.items())[: args.truths]))
    if args.note:
        header += f"\n\n{args.note}"
    text = render(rows, header)
    print(text)
    atomic_write_text(out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

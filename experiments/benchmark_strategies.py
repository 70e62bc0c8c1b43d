"""Benchmark the strategies (active, isoflop-grid, random) on simulated truths (DESIGN.md §6).

Five truths that differ from the default (E, A, B, alpha, beta, eta0, a_eta, omega, lam varied
within plausible ranges) x seeds; every strategy gets the same budget. Scores: regret at the
target vs ``simulator.evaluation.true_optimum``, N error, loss error and whether the predicted
loss's 90% interval covers the recommendation's true mean loss. Prints the table and the medians
and writes experiments/results/benchmark_strategies.md (or --out).

    python experiments/benchmark_strategies.py            # full (long on 2 cores)
    python experiments/benchmark_strategies.py --tiny     # smoke test settings
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from bayes_scaling.api.oracle import open_oracle
from bayes_scaling.loop import STRATEGIES, LoopConfig, run_loop
from bayes_scaling.scoring import evaluate_recommendation
from bayes_scaling.simulator.inprocess import SimulatedApi
from bayes_scaling.simulator.truth import Truth

TRUTHS = {
    "lowE-steepN": dict(E=1.6, A=420.0, alpha=0.37, B=500.0, beta=0.34, seed=11),
    "highE-flatN": dict(E=2.0, A=300.0, alpha=0.32, B=620.0, beta=0.38, seed=12),
    "lr-shift": dict(eta0=9e-4, a_eta=0.25, A=380.0, beta=0.355, seed=13),
    "emb-counts": dict(omega=0.5, lam=0.6, alpha=0.335, B=600.0, seed=14),
    "data-hungry": dict(E=1.75, B=700.0, beta=0.35, alpha=0.36, eta0=5e-4, a_eta=0.4, seed=15),
}


def run_one(truth: Truth, strategy: str, seed: int, config_kwargs: dict) -> dict:
    config = LoopConfig(strategy=strategy, **config_kwargs)
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
    return {
        "strategy": strategy,
        "seed": seed,
        "n_runs": len(result.observations),
        "flops_used": result.flops_used,
        "budget": config.budget_flops,
        "seconds": seconds,
        **{k: scores[k] for k in ("regret", "n_error", "loss_error", "ci90_covers_true_loss")},
    }


def render(rows: list[dict], header: str) -> str:
    lines = [header, "", "| truth | strategy | seed | runs | FLOPs used | regret | N error | "
             "loss error | ci90 covers | seconds |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['truth']} | {r['strategy']} | {r['seed']} | {r['n_runs']} | "
            f"{r['flops_used']:.3g} | {r['regret']:.4f} | {r['n_error']:.3f} | "
            f"{r['loss_error']:.3f} | {'yes' if r['ci90_covers_true_loss'] else 'no'} | "
            f"{r['seconds']:.0f} |"
        )
    lines += ["", "| strategy | median regret | median N error | median loss error | "
              "ci90 coverage |", "|---|---|---|---|---|"]
    for strategy in STRATEGIES:
        sub = [r for r in rows if r["strategy"] == strategy]
        if not sub:
            continue
        covered = sum(r["ci90_covers_true_loss"] for r in sub)
        lines.append(
            f"| {strategy} | {np.median([r['regret'] for r in sub]):.4f} | "
            f"{np.median([r['n_error'] for r in sub]):.3f} | "
            f"{np.median([r['loss_error'] for r in sub]):.3f} | {covered}/{len(sub)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="smoke-test settings")
    parser.add_argument("--truths", type=int, default=len(TRUTHS), help="how many truths")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--out", default="experiments/results/benchmark_strategies.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.tiny:
        kwargs = dict(budget_flops=2e17, max_queries=8, num_initial=4, num_warmup=10,
                      num_samples=10, final_num_warmup=10, final_num_samples=10,
                      final_num_chains=1, fit_baseline_posterior=False, num_bootstrap=50)
    else:
        kwargs = dict(budget_flops=2e18, max_queries=48, num_warmup=120, num_samples=120,
                      final_num_warmup=300, final_num_samples=300, final_num_chains=2,
                      fit_baseline_posterior=False)
    rows = []
    for name, values in list(TRUTHS.items())[: args.truths]:
        truth = Truth.from_mapping(values)
        for seed in range(args.seeds):
            for strategy in args.strategies:
                row = {"truth": name, **run_one(truth, strategy, seed, kwargs)}
                print(f"{name} seed {seed} {strategy}: regret {row['regret']:.4f}, N error "
                      f"{row['n_error']:.3f}, covers {row['ci90_covers_true_loss']}", flush=True)
                if row["flops_used"] > row["budget"]:
                    raise SystemExit(f"{strategy} overspent: {row['flops_used']}")
                rows.append(row)
    header = (f"# Strategy benchmark ({'tiny smoke settings' if args.tiny else 'full settings'})"
              f"\n\nSettings: {kwargs}; target 1e19; truths: "
              + "; ".join(f"{k}={v}" for k, v in list(TRUTHS.items())[: args.truths]))
    text = render(rows, header)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

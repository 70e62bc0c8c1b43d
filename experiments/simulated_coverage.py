"""Coverage of N_opt(1e19) and of the loss at 1e19 on data simulated from the truth family.

Per seed: a random design of API-valid configurations over budgets 1e15-3e17 summing to at most
2e18 FLOPs (a third of the runs at learning rates 3-10x below their optimum), losses from the
default truth with that seed's noise, one NUTS fit, and the 90% intervals of the posterior of
``N_opt`` (non-embedding parameters) and of the optimal loss at 1e19 against the truth's optimum
(:func:`bayes_scaling.simulator.evaluation.true_optimum`). The loss interval is given twice from
the same fit: law only (``OptimumDraws.law_loss``: parameter uncertainty only, the package before
the extrapolation discrepancy) and as predicted now (``OptimumDraws.loss``, with the discrepancy
of :mod:`bayes_scaling.model`).

Usage: ``python experiments/simulated_coverage.py [--seeds 10] [--warmup 500] [--samples 500]``
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import jax
import numpy as np

from bayes_scaling.features import features_from_configs
from bayes_scaling.files import atomic_write_text
from bayes_scaling.inference import NutsConfig, Refitter
from bayes_scaling.simulator.evaluation import true_optimum
from bayes_scaling.simulator.truth import Truth, observed_loss, optimal_learning_rate
from bayes_scaling.space import RunConfig, validate_config
from bayes_scaling.summary import equal_tailed

RESULTS = Path(__file__).resolve().parent / "results"
TARGET = 1e19
BUDGET = 2e18
#: (train_flops, runs) of the design; 1.83e18 FLOPs in all.
DESIGN = ((1e15, 8), (3e15, 8), (1e16, 10), (3e16, 10), (1e17, 8), (3e17, 2))


def make_design(rng: np.random.Generator, truth: Truth) -> list[RunConfig]:
    """Random API-valid configurations; a third at learning rates 3-10x below the optimum."""
    configs = []
    for flops, count in DESIGN:
        seen = set()
        while len([c for c in configs if c.train_flops == int(flops)]) < count:
            d_model = int(rng.choice(np.arange(128, 1024 + 1, 64)))
            aspect = float(np.exp(rng.uniform(np.log(16), np.log(200))))
            num_layers = int(np.clip(round(d_model / aspect), 2, 24))
            num_heads = max(2, min(16, d_model // 64))
            while d_model % num_heads:
                num_heads -= 1
            if (d_model, num_layers) in seen:
                continue
            seen.add((d_model, num_layers))
            eta = float(optimal_learning_rate(truth, d_model, num_layers, flops))
            if rng.uniform() < 1 / 3:
                lr = eta / rng.uniform(3.0, 10.0)
            else:
                lr = eta * float(np.exp(rng.normal(0.0, 0.3)))
            lr = float(np.clip(lr, 1e-4, 1e-3))
            config = RunConfig(
                d_model=d_model,
                num_layers=num_layers,
                num_heads=num_heads,
                batch_size=int(rng.choice([128, 256])),
                learning_rate=lr,
                train_flops=int(flops),
            )
            configs.append(validate_config(config))
    if sum(c.train_flops for c in configs) > BUDGET:
        raise RuntimeError("design exceeds the budget")
    return configs


def run_seed(seed: int, refitter: Refitter) -> dict:
    truth = replace(Truth(), seed=seed)
    rng = np.random.default_rng(1000 + seed)
    configs = make_design(rng, truth)
    loss = np.array([observed_loss(truth, c) for c in configs])
    features = features_from_configs(configs)
    start = time.perf_counter()
    posterior = refitter.fit(jax.random.key(seed), features, loss)
    seconds = time.perf_counter() - start
    opt = posterior.optimum(TARGET)
    best = true_optimum(truth, TARGET)
    n_lo, n_med, n_hi = equal_tailed(opt.n_params)
    l_lo, l_med, l_hi = equal_tailed(opt.loss)
    b_lo, _, b_hi = equal_tailed(opt.law_loss)
    return {
        "seed": seed,
        "runs": len(configs),
        "flops": sum(c.train_flops for c in configs),
        "n_true": best.non_embedding_params,
        "n_med": n_med,
        "n_lo": n_lo,
        "n_hi": n_hi,
        "n_cover": bool(n_lo <= best.non_embedding_params <= n_hi),
        "width": float(np.log(n_hi / n_lo)),
        "loss_true": best.loss,
        "loss_med": l_med,
        "loss_lo": l_lo,
        "loss_hi": l_hi,
        "loss_cover": bool(l_lo <= best.loss <= l_hi),
        "law_lo": b_lo,
        "law_hi": b_hi,
        "law_cover": bool(b_lo <= best.loss <= b_hi),
        "r_hat": posterior.diagnostics.r_hat_max,
        "divergences": posterior.diagnostics.divergences,
        "seconds": seconds,
    }


def format_table(rows: list[dict]) -> str:
    lines = [
        "| seed | runs | FLOPs | true N_opt | median | 90% interval | covers | ln width "
        "| true loss | median | law-only 90% | covers | 90% interval | covers | r_hat | div "
        "| fit s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['seed']} | {r['runs']} | {r['flops']:.2e} | {r['n_true']:.3e} | "
            f"{r['n_med']:.3e} | [{r['n_lo']:.2e}, {r['n_hi']:.2e}] | {r['n_cover']} | "
            f"{r['width']:.2f} | {r['loss_true']:.3f} | {r['loss_med']:.3f} | "
            f"[{r['law_lo']:.3f}, {r['law_hi']:.3f}] | {r['law_cover']} | "
            f"[{r['loss_lo']:.3f}, {r['loss_hi']:.3f}] | {r['loss_cover']} | "
            f"{r['r_hat']:.3f} | {r['divergences']} | {r['seconds']:.1f} |"
        )
    n_cov = sum(r["n_cover"] for r in rows)
    l_cov = sum(r["loss_cover"] for r in rows)
    b_cov = sum(r["law_cover"] for r in rows)
    lines.append("")
    lines.append(
        f"N_opt(1e19) 90% coverage: {n_cov}/{len(rows)}; loss coverage: {l_cov}/{len(rows)} "
        f"(law only: {b_cov}/{len(rows)}); median ln-width of the N_opt interval: "
        f"{np.median([r['width'] for r in rows]):.2f}; median width of the loss interval: "
        f"{np.median([r['loss_hi'] - r['loss_lo'] for r in rows]):.3f} (law only: "
        f"{np.median([r['law_hi'] - r['law_lo'] for r in rows]):.3f})"
    )
    return "\n".join(lines)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "simulated_coverage.md")
    args = parser.parse_args(argv)
    nuts = NutsConfig(num_warmup=args.warmup, num_samples=args.samples, num_chains=args.chains)
    refitter = Refitter(nuts=nuts)
    rows = []
    for seed in range(args.seeds):
        rows.append(run_seed(seed, refitter))
        print(format_table(rows[-1:]).splitlines()[2], flush=True)
    table = format_table(rows)
    header = (
        f"# Simulated coverage (default truth, target {TARGET:.0e}, NUTS {args.chains} chains x "
        f"{args.samples} draws, {args.warmup} warmup)\n\n"
    )
    print(table)
    atomic_write_text(args.out, header + table + "\n")
    return table


if __name__ == "__main__":
    main()

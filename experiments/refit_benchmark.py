"""Wall time of one refit with 20, 50, 100 and 200 runs: Refitter vs a naive numpyro MCMC.

The Refitter reuses one compiled program per padded capacity and warm-starts the chains; the naive
setup builds a new ``numpyro.infer.MCMC`` per refit (as most code does), which re-jits. Both use the
same model, data (simulated API runs) and NUTS settings; the median over ``--repeats`` refits,
each with one more run than the last, is reported after one warm-up refit.

Usage: ``python experiments/refit_benchmark.py [--sizes 20 50 100 200] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import MCMC, NUTS, init_to_median

from bayes_scaling.features import features_from_configs
from bayes_scaling.files import atomic_write_lines
from bayes_scaling.inference import NutsConfig, Refitter, padded_capacity
from bayes_scaling.model import PriorConfig, make_model_data, scaling_model
from bayes_scaling.simulator.truth import Truth, observed_loss
from bayes_scaling.space import RunConfig

RESULTS = Path(__file__).resolve().parent / "results"


def simulated_runs(count: int, rng: np.random.Generator):
    truth = Truth()
    flops = (1e15, 3e15, 1e16, 3e16, 1e17)
    configs = []
    for _ in range(count):
        d = int(rng.choice(np.arange(128, 1025, 64)))
        configs.append(RunConfig(
            d_model=d, num_layers=int(rng.integers(2, 13)), num_heads=max(2, d // 64),
            batch_size=int(rng.choice([128, 256])),
            learning_rate=float(np.exp(rng.uniform(np.log(1e-4), np.log(1e-3)))),
            train_flops=int(rng.choice(flops))))
    return configs, np.array([observed_loss(truth, c) for c in configs])


def naive_fit(key, features, loss, nuts: NutsConfig):
    capacity = padded_capacity(len(features), nuts.min_capacity)
    data = make_model_data(features, capacity).as_jax()
    padded = np.ones(capacity)
    padded[: len(loss)] = loss
    kernel = NUTS(partial(scaling_model, prior=PriorConfig(), nuisance=True),
                  target_accept_prob=nuts.target_accept, max_tree_depth=nuts.max_tree_depth,
                  dense_mass=nuts.dense_mass, init_strategy=init_to_median(num_samples=15))
    mcmc = MCMC(kernel, num_warmup=nuts.num_warmup, num_samples=nuts.num_samples,
                num_chains=nuts.num_chains, chain_method=nuts.chain_method, progress_bar=False)
    mcmc.run(key, data, loss=jnp.asarray(padded))
    return mcmc.get_samples()


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 50, 100, 200])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS / "refit_benchmark.md")
    args = parser.parse_args(argv)
    nuts = NutsConfig()
    if args.warmup or args.samples:
        nuts = NutsConfig(num_warmup=args.warmup or nuts.num_warmup,
                          num_samples=args.samples or nuts.num_samples)
    rng = np.random.default_rng(0)
    configs, loss = simulated_runs(max(args.sizes) + args.repeats + 1, rng)
    lines = [
        f"# Refit wall time (NUTS {nuts.num_chains} chains x {nuts.num_samples} draws, "
        f"{nuts.num_warmup} warmup, {nuts.chain_method})",
        "",
        "| runs | Refitter median s | naive MCMC median s | naive / Refitter |",
        "|---|---|---|---|",
    ]
    refitter = Refitter(nuts=nuts)
    for size in args.sizes:
        times = {"refit": [], "naive": []}
        for r in range(args.repeats + 1):
            m = size + r
            feats = features_from_configs(configs[:m])
            key = jax.random.key(r)
            start = time.perf_counter()
            refitter.fit(key, feats, loss[:m])
            t_refit = time.perf_counter() - start
            start = time.perf_counter()
            naive_fit(key, feats, loss[:m], nuts)
            t_naive = time.perf_counter() - start
            if r > 0:  # the first refit at a new capacity compiles; it is the warm-up
                times["refit"].append(t_refit)
                times["naive"].append(t_naive)
        a, b = np.median(times["refit"]), np.median(times["naive"])
        lines.append(f"| {size} | {a:.2f} | {b:.2f} | {b / a:.1f} |")
        print(lines[-1], flush=True)
    table = atomic_write_lines(args.out, lines)
    print(table)
    return table


if __name__ == "__main__":
    main()

"""Fit the generic-row model to Epoch AI's Chinchilla data and compare with Epoch's estimates.

Data: ``epoch_chinchilla.csv`` (Hoffmann et al. 2022 fig. 4 as digitised by Besiroglu et al.
2024), ``D = C / (6 N)``, the 5 highest losses dropped as Epoch does (n = 240). Pass: posterior
medians of E, alpha, beta and a = beta / (alpha + beta) inside Epoch's bootstrap 95% intervals
(``epoch_chinchilla_estimates.md``), r-hat <= 1.01 and no divergences.

Usage: ``python experiments/epoch_check.py [--data DIR] [--warmup 1000] [--samples 1000]``
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import jax
import numpy as np

from bayes_scaling.features import features_from_generic
from bayes_scaling.files import atomic_write_lines
from bayes_scaling.inference import NutsConfig, fit_posterior
from bayes_scaling.summary import equal_tailed

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
#: Epoch's point estimates and bootstrap 95% intervals (notebook cells 25, 26, 59).
EPOCH = {
    "E": (1.81686, 1.769, 1.871),
    "alpha": (0.34781, 0.317, 0.373),
    "beta": (0.36585, 0.331, 0.415),
    "a": (0.513, 0.513 - 1.96 * 0.020, 0.513 + 1.96 * 0.020),
}


def load_epoch(data_dir: Path):
    with open(data_dir / "epoch_chinchilla.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    n = np.array([float(r["Model Size"]) for r in rows])
    flops = np.array([float(r["Training FLOP"]) for r in rows])
    loss = np.array([float(r["loss"]) for r in rows])
    keep = loss < np.sort(loss)[-5]
    return n[keep], flops[keep] / (6.0 * n[keep]), loss[keep]


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--out", type=Path, default=RESULTS / "epoch_check.md")
    args = parser.parse_args(argv)
    n, tokens, loss = load_epoch(args.data)
    nuts = NutsConfig(num_warmup=args.warmup, num_samples=args.samples, num_chains=args.chains)
    post = fit_posterior(jax.random.key(0), features_from_generic(n, tokens), loss, nuts=nuts)
    draws = dict(post.draws)
    draws["a"] = draws["beta"] / (draws["alpha"] + draws["beta"])
    lines = [
        f"# Epoch Chinchilla check (n = {len(n)}, NUTS {args.chains} x {args.samples}, "
        f"{args.warmup} warmup)",
        "",
        "| parameter | Epoch estimate | Epoch 95% CI | posterior median | posterior 90% | inside |",
        "|---|---|---|---|---|---|",
    ]
    ok = True
    for name, (est, lo, hi) in EPOCH.items():
        q5, q50, q95 = equal_tailed(draws[name])
        inside = lo <= q50 <= hi
        ok &= inside
        lines.append(
            f"| {name} | {est:.4g} | [{lo:.4g}, {hi:.4g}] | {q50:.4g} | [{q5:.4g}, {q95:.4g}] "
            f"| {inside} |"
        )
    for name in ("A", "B"):
        q5, q50, q95 = equal_tailed(draws[name])
        lines.append(f"| {name} | | | {q50:.4g} | [{q5:.4g}, {q95:.4g}] | |")
    d = post.diagnostics
    ok &= d.r_hat_max <= 1.01 and d.divergences == 0
    lines += [
        "",
        f"r_hat max {d.r_hat_max:.4f}, ess bulk min {d.ess_bulk_min:.0f}, ess tail min "
        f"{d.ess_tail_min:.0f}, divergences {d.divergences}. PASS: {ok}",
    ]
    table = atomic_write_lines(args.out, lines)
    print(table)
    return table


if __name__ == "__main__":
    main()

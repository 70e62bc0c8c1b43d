"""Compare the two shape rules of ``recommend`` by the true loss of what they recommend.

For each posterior (saved ``posterior.nc`` files of default simulated ``run``s, and fits to the
isoflop-grid design of a 2e18 budget simulated under the default truth with different noise
seeds), both rules ``n_opt_median`` and ``expected_loss`` recommend a configuration at the target;
the simulator's truth then scores it (evaluation only: ``scoring.evaluate_recommendation``).
Prints a markdown table and writes it to ``--out``.

    python experiments/recommend_rules.py --run-dir /tmp/run1 --seeds 3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import jax
import numpy as np

from bayes_scaling.features import features_from_configs
from bayes_scaling.files import atomic_write_text
from bayes_scaling.inference import NutsConfig, fit_posterior
from bayes_scaling.isoflop_grid import grid_design
from bayes_scaling.posterior import Posterior
from bayes_scaling.posterior_io import load_posterior
from bayes_scaling.recommend import recommend
from bayes_scaling.scoring import evaluate_recommendation
from bayes_scaling.simulator.truth import Truth, observed_loss

RULES = ("n_opt_median", "expected_loss")


def _run_label(run_dir: Path) -> str:
    """A run's label from its report (strategy and size), not its (often temporary) path."""
    report = json.loads((run_dir / "report.json").read_text())
    return f"{report['strategy']} run, {report['n_runs']} runs"


def grid_posterior(seed: int, nuts: NutsConfig, budget: float) -> tuple[Posterior, int]:
    """Fit to the isoflop-grid design under the default truth with noise seed ``seed``."""
    truth = dataclasses.replace(Truth(), seed=seed)
    configs = grid_design(budget)
    loss = np.array([observed_loss(truth, c) for c in configs])
    posterior = fit_posterior(jax.random.PRNGKey(seed), features_from_configs(configs), loss,
                              nuts=nuts)
    return posterior, len(configs)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", action="append", default=[],
                        help="output folder of a default `bayes-scaling run` (repeatable)")
    parser.add_argument("--seeds", type=int, default=3, help="grid-design fits (noise seeds)")
    parser.add_argument("--budget", type=float, default=2e18)
    parser.add_argument("--target", type=float, default=1e19)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "recommend_rules.md")
    args = parser.parse_args(argv)
    nuts = NutsConfig(num_warmup=args.warmup, num_samples=args.samples, num_chains=args.chains)
    truth = Truth()
    sources = [(_run_label(Path(d)), load_posterior(Path(d)))
               for d in args.run_dir]
    for seed in range(args.seeds):
        posterior, m = grid_posterior(seed, nuts, args.budget)
        sources.append((f"isoflop grid, {m} runs, noise seed {seed}", posterior))
    rows = [
        "| posterior | rule | d_model x L | N (non-emb) | lr | bs | true loss | regret |"
        " 90% covers |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    regrets = {rule: [] for rule in RULES}
    for name, posterior in sources:
        for rule in RULES:
            rec = recommend(jax.random.PRNGKey(0), posterior, args.target, shape_rule=rule)
            score = evaluate_recommendation(truth, rec, args.target)
            regrets[rule].append(score["regret"])
            rows.append(
                f"| {name} | {rule} | {rec.d_model} x {rec.num_layers} | "
                f"{rec.non_embedding_params:.3g} | {rec.learning_rate:.3g} | {rec.batch_size} | "
                f"{score['true_loss_of_recommended']:.4f} | {score['regret']:.4f} | "
                f"{score['ci90_covers_true_loss']} |"
            )
    optimum = evaluate_recommendation(truth, rec, args.target)
    lines = [
        f"# Shape rules of `recommend` at {args.target:.0e} FLOPs (default truth)",
        "",
        f"True optimum loss {optimum['true_optimum_loss']:.4f} at "
        f"N = {optimum['true_optimum_non_embedding_params']:.3g}. Regret = true mean loss of the "
        "recommended configuration minus the true optimum's (evaluation only). NUTS "
        f"{args.warmup}/{args.samples}/{args.chains}.",
        "",
        *rows,
        "",
        "| rule | mean regret | max regret |",
        "|---|---|---|",
        *[f"| {rule} | {np.mean(r):.4f} | {np.max(r):.4f} |" for rule, r in regrets.items()],
        "",
    ]
    table = "\n".join(lines)
    print(table)
    atomic_write_text(args.out, table)
    return table


if __name__ == "__main__":
    main()

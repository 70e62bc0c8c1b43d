"""Where the time of a default ``active`` run goes: fits, acquisition, queries.

Runs the loop on the in-process simulator (default truth, budget 2e18, target 1e19) and prints
the split; writes experiments/results/time_split.md (or --out). ``--tiny`` for a smoke test.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

import jax

from bayes_scaling.api.oracle import open_oracle
from bayes_scaling.files import atomic_write_text
from bayes_scaling.loop import LoopConfig, run_loop
from bayes_scaling.simulator.inprocess import SimulatedApi
from bayes_scaling.simulator.truth import Truth


def simulated_run(config: LoopConfig, seed: int = 0):
    """One loop of ``config`` on the in-process simulator (default truth), in a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        oracle = open_oracle(SimulatedApi(Truth(), config.budget_flops),
                             Path(tmp) / "ledger.sqlite", config.budget_flops)
        try:
            return run_loop(jax.random.PRNGKey(seed), oracle, config)
        finally:
            oracle.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", default="experiments/results/time_split.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    kwargs = {}
    if args.tiny:
        kwargs = dict(budget_flops=2e17, max_queries=6, planned_queries=6, num_initial=4,
                      num_warmup=10, num_samples=10, final_num_warmup=10, final_num_samples=10,
                      final_num_chains=1)
    config = LoopConfig.from_flat(**kwargs)
    load = os.getloadavg()[0]
    result = simulated_run(config)
    t = result.timings
    lines = [
        f"# Time split of an active run ({'tiny' if args.tiny else 'default'} settings)", "",
        f"{len(result.observations)} runs, {result.flops_used:.3g} FLOPs, "
        f"{len(result.history)} fits, stop: {result.stop_reason}; largest run "
        f"{max(o.config.train_flops for o in result.observations):.0e} FLOPs", "",
        f"Settings: criterion {config.criterion}, budget {config.budget_flops:.3g}, target "
        f"{config.target_flops:.3g}, planned "
        f"queries {config.active.planned_queries}, queries per refit "
        f"{config.active.queries_per_fit}, in-loop NUTS {config.nuts.num_chains} x "
        f"({config.nuts.num_warmup} + {config.nuts.num_samples}), final NUTS "
        f"{config.final_nuts.num_chains} x ({config.final_nuts.num_warmup} + "
        f"{config.final_nuts.num_samples}); "
        f"final r-hat max {result.posterior.diagnostics.r_hat_max:.3f}. Load average (1 min) "
        f"when the run started: {load:.2f} on {os.cpu_count()} cores (above about 0.5, other "
        "jobs shared the machine and the wall seconds are upper bounds); JAX's compilation "
        "cache as the environment leaves it (a warm cache makes the compilation in the fits "
        "cheaper); CPU seconds count all threads of this process.", "",
        "| part | wall seconds | share | CPU seconds | share |", "|---|---|---|---|---|",
    ]
    def row(label: str, wall: float, cpu: float) -> str:
        return (f"| {label} | {wall:.1f} | {wall / t['total']:.0%} | {cpu:.1f} | "
                f"{cpu / t['cpu_total']:.0%} |")

    lines.append(row("in-loop fits (NUTS, incl. compilation)", t["fit"] - t["final_fit"],
                     t["cpu_fit"] - t["cpu_final_fit"]))
    lines.append(row("final fit", t["final_fit"], t["cpu_final_fit"]))
    parts = ("acquisition", "query", "design")
    for part in parts:
        label = "design yardstick (report's design efficiency)" if part == "design" else part
        lines.append(row(label, t[part], t[f"cpu_{part}"]))
    lines.append(row("other (recommendation, bookkeeping)",
                     t["total"] - t["fit"] - sum(t[p] for p in parts),
                     t["cpu_total"] - t["cpu_fit"] - sum(t[f"cpu_{p}"] for p in parts)))
    lines.append(row("total", t["total"], t["cpu_total"]))
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    atomic_write_text(out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

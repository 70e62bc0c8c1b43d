"""Where the time of a default ``active`` run goes: fits, acquisition, queries.

Runs the loop on the in-process simulator (default truth, budget 2e18, target 1e19) and prints
the split; writes experiments/results/time_split.md (or --out). ``--tiny`` for a smoke test.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import jax

from bayes_scaling.api.oracle import open_oracle
from bayes_scaling.loop import LoopConfig, run_loop
from bayes_scaling.simulator.inprocess import SimulatedApi
from bayes_scaling.simulator.truth import Truth


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", default="experiments/results/time_split.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    kwargs = {}
    if args.tiny:
        kwargs = dict(budget_flops=2e17, max_queries=6, num_initial=4, num_warmup=10,
                      num_samples=10, final_num_warmup=10, final_num_samples=10,
                      final_num_chains=1)
    config = LoopConfig(**kwargs)
    with tempfile.TemporaryDirectory() as tmp:
        oracle = open_oracle(SimulatedApi(Truth(), config.budget_flops),
                             Path(tmp) / "ledger.sqlite", config.budget_flops)
        try:
            result = run_loop(jax.random.PRNGKey(0), oracle, config)
        finally:
            oracle.close()
    t = result.timings
    lines = [
        f"# Time split of an active run ({'tiny' if args.tiny else 'default'} settings)", "",
        f"{len(result.observations)} runs, {result.flops_used:.3g} FLOPs, "
        f"{len(result.history)} fits, stop: {result.stop_reason}", "",
        "| part | seconds | share |", "|---|---|---|",
    ]
    for part in ("fit", "acquisition", "query"):
        lines.append(f"| {part} | {t[part]:.1f} | {t[part] / t['total']:.0%} |")
    other = t["total"] - t["fit"] - t["acquisition"] - t["query"]
    lines += [f"| other (recommendation, bookkeeping) | {other:.1f} | {other / t['total']:.0%} |",
              f"| total | {t['total']:.1f} | 100% |"]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

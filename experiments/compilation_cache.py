"""What JAX's persistent compilation cache saves: one small loop in fresh processes.

Runs the same small ``active`` loop (in-process simulator, default truth, budget 5e17, 20
queries, tiny NUTS, the ``n-opt`` criterion its results were measured with) in three fresh
Python processes: with the cache off (``BAYES_SCALING_JAX_CACHE=off``), with an empty cache
directory (cold: it compiles and writes), and again with that directory (warm). Prints and
writes the CPU and wall seconds of each (experiments/results/compilation_cache.md, or --out).
``--tiny``: 8 queries.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, runpy, sys, time
t0, w0 = time.process_time(), time.perf_counter()
from bayes_scaling.loop import LoopConfig
simulated_run = runpy.run_path(sys.argv[2])["simulated_run"]
queries = int(sys.argv[1])
config = LoopConfig.from_flat(num_warmup=30, num_samples=30, final_num_warmup=30,
                              final_num_samples=30, final_num_chains=1, budget_flops=5e17,
                              max_queries=queries, planned_queries=queries, criterion="n-opt")
result = simulated_run(config)
print(json.dumps({"cpu": time.process_time() - t0, "wall": time.perf_counter() - w0,
                  "runs": len(result.observations)}))
"""


def run_child(queries: int, cache: str) -> dict:
    env = {**os.environ, "BAYES_SCALING_JAX_CACHE": cache}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    script = str(Path(__file__).with_name("time_split.py"))
    done = subprocess.run([sys.executable, "-c", CHILD, str(queries), script], env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", default="experiments/results/compilation_cache.md")
    args = parser.parse_args(argv)
    queries = 8 if args.tiny else 20
    with tempfile.TemporaryDirectory() as cache:
        results = [("off", run_child(queries, "off")),
                   ("empty cache (cold)", run_child(queries, cache)),
                   ("filled cache (warm)", run_child(queries, cache))]
        size = sum(f.stat().st_size for f in Path(cache).rglob("*") if f.is_file())
    lines = ["# The persistent compilation cache", "",
             f"One small active loop ({queries} queries, budget 5e17, NUTS 1 x (30 + 30)) in a "
             "fresh process each time; CPU seconds count every thread of the process, import "
             f"included. The cache held {size / 1e6:.1f} MB after the cold run. Other jobs may "
             "have shared the machine, so wall seconds are upper bounds.", "",
             "| cache | runs | CPU seconds | wall seconds |", "|---|---|---|---|"]
    lines += [f"| {name} | {r['runs']} | {r['cpu']:.1f} | {r['wall']:.1f} |" for name, r in results]
    off, warm = results[0][1]["cpu"], results[2][1]["cpu"]
    lines += ["", f"The warm cache uses {warm / off:.0%} of the CPU time without it."]
    text = "\n".join(lines) + "\n"
    print(text)
    from bayes_scaling.files import atomic_write_text

    atomic_write_text(Path(args.out), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

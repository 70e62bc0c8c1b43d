"""Replay benchmark of the pool strategies on real runs (issue 8; protocol of Li et al. 2026).

Each real data set is split by compute: the highest-compute runs are the target region, the rest
the pool (cost of a run: ``6 N D``). Every strategy of :mod:`bayes_scaling.pool_loop` starts from
the cheapest ``floor(2.5 P)`` rows (at most 1% of the pool cost here: ``min(2%, first
checkpoint)``), buys rows up to 1%, 5% and 10% of the pool's total cost, and is scored at each
checkpoint on the target rows: R^2 of the point prediction (clipped to [-1, 1], raw loss), 90%
predictive coverage and mean width. ``all-data`` fits the whole pool once.

Pools (``../shared/data``):

- ``chinchilla``: Epoch's digitisation of Chinchilla (all 245 rows kept; N = Model Size,
  D = C / (6 N)); target: the top 20% of runs by compute.
- ``porian:<k>``: Porian et al. 2024, one pool per analysis configuration (15); target: budgets
  >= 3.2e18 FLOPs.
- ``li2025``: Li et al. 2025 final checkpoints (every run, all peak learning rates; N = N_no_emb);
  target: the largest model.
- ``gadre:<data set>``: Gadre et al. 2024 (N = params_no_embed, C4 validation loss), one pool per
  training data set; target: its three largest runs by compute.

In-loop fits only rank candidates: small NUTS (1 chain, 50 warmup + 100 draws, each chain
warm-started where the previous fit's ended; refit after every 4 purchases); checkpoint fits,
which are scored, 2 chains x (300 + 300). (The in-loop warmup was 100: on Chinchilla seeds 0-2
``active-region`` at 10% scored R^2 0.844 / 0.895 / 0.894 with 50 against 0.886 / 0.860 / 0.885
with 100.) Cells (pool, strategy, seed) fan out with Ray (local, one
worker per ``--workers``) or, with ``--executor process``, a process pool; each finished cell is
appended to a JSON-lines file (``--rows``) and skipped on the next start, so an interrupted run
resumes. Writes ``experiments/results/pool_benchmark.md`` (or ``--out``).

``--variant`` runs an ablation of the active strategies' choices (``no-window``: candidates of
every tokens-per-parameter ratio; ``window-2x``: the target's ratio range widened 2x, the earlier
default; ``law-only``: the region criteria without the extrapolation discrepancy), labelled
``<strategy> (<variant>)`` in the same rows file. Each pool group's table states how many cells
of the full 10-seed run it holds (``--report-only`` renders every cell of the rows file).

    nice -n 10 python experiments/pool_benchmark.py --pools chinchilla --seeds 3
    python experiments/pool_benchmark.py --tiny --pools chinchilla    # smoke test
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np

from bayes_scaling.fanout import init_ray
from bayes_scaling.files import atomic_write_text
from bayes_scaling.model import PriorConfig
from bayes_scaling.pool import PoolOracle, PurchaseLedger, pool_from_arrays
from bayes_scaling.pool_loop import (
    POOL_STRATEGIES,
    PoolLoopConfig,
    PoolTarget,
    default_pool_model,
    run_pool_loop,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
DATA = Path(os.environ.get("BAYES_SCALING_SHARED_DATA", ROOT.parent / "shared" / "data"))
FRACTIONS = (0.01, 0.05, 0.1)
POOL_GROUPS = ("chinchilla", "porian", "li2025", "gadre")
FULL_NUTS = dict(num_warmup=50, num_samples=100, num_chains=1, score_num_warmup=300,
                 score_num_samples=300, score_num_chains=2)
TINY_NUTS = dict(num_warmup=10, num_samples=10, num_chains=1, score_num_warmup=10,
                 score_num_samples=10, score_num_chains=1)


def _rows(name: str, data: Path) -> list[dict]:
    with open(data / name, newline="") as handle:
        return list(csv.DictReader(handle))


def _split(n, d, loss, is_target):
    """(n, d, loss) of the pool, then of the target."""
    n, d, loss, t = (np.asarray(a) for a in (n, d, loss, is_target))
    return (n[~t], d[~t], loss[~t]), (n[t], d[t], loss[t])


def load_pools(group: str, data: Path) -> dict[str, tuple]:
    """Pools of one group: name -> ((n, d, loss) of the pool, (n, d, loss) of the target)."""
    if group == "chinchilla":
        rows = _rows("epoch_chinchilla.csv", data)
        n = np.array([float(r["Model Size"]) for r in rows])
        flops = np.array([float(r["Training FLOP"]) for r in rows])
        loss = np.array([float(r["loss"]) for r in rows])
        return {"chinchilla": _split(n, flops / (6 * n), loss,
                                     flops > np.quantile(flops, 0.8))}
    if group == "porian":
        rows = _rows("porian2024_isoflop_points.csv", data)
        by_config: dict[str, list] = defaultdict(list)
        for r in rows:
            by_config[f"{r['config_label']} ({r['dataset']})"].append(r)
        pools = {}
        for k, label in enumerate(sorted(by_config)):
            part = by_config[label]
            n = np.array([float(r["n_params"]) for r in part])
            d = np.array([float(r["tokens"]) for r in part])
            loss = np.array([float(r["loss"]) for r in part])
            flops = np.array([float(r["flops"]) for r in part])
            pools[f"porian:{k}"] = _split(n, d, loss, flops >= 3.2e18 * (1 - 1e-9))
        return pools
    if group == "li2025":
        rows = _rows("li2025_misfitting_last_ckpt_runs.csv", data)
        n = np.array([float(r["N_no_emb"]) for r in rows])
        d = np.array([float(r["D"]) for r in rows])
        loss = np.array([float(r["loss"]) for r in rows])
        return {"li2025": _split(n, d, loss, n == n.max())}
    if group == "gadre":
        rows = _rows("gadre2024_overtraining_runs.csv", data)
        pools = {}
        for dataset in sorted({r["dataset_name"] for r in rows}):
            part = [r for r in rows if r["dataset_name"] == dataset]
            n = np.array([float(r["params_no_embed"]) for r in part])
            d = np.array([float(r["tokens"]) for r in part])
            loss = np.array([float(r["loss_c4_val"]) for r in part])
            top = np.argsort(6 * n * d)[-3:]
            pools[f"gadre:{dataset}"] = _split(n, d, loss, np.isin(np.arange(n.size), top))
        return pools
    raise ValueError(f"pool group: expected one of {POOL_GROUPS}, got {group!r}")


#: Ablations of the active strategies: name -> (PoolLoopConfig options, what it changes).
VARIANTS = {
    "no-window": ({"ratio_window": None}, "candidates of every tokens-per-parameter ratio"),
    "window-2x": ({"ratio_window": 2.0}, "the target's ratio range widened 2x (the earlier "
                  "default)"),
    "law-only": ({"region_discrepancy": False}, "region criteria without the discrepancy term"),
}

_WORKER_CACHE: dict = {}


def run_cell(spec: dict) -> list[dict]:
    """One (pool, strategy, seed): a row per checkpoint. Runs in a worker process."""
    logging.getLogger("bayes_scaling.inference").setLevel(logging.ERROR)
    jax.config.update("jax_enable_x64", True)
    group = spec["pool"].split(":")[0]
    key = (group, spec["data"])
    if key not in _WORKER_CACHE:
        _WORKER_CACHE[key] = load_pools(group, Path(spec["data"]))
    (n, d, loss), (tn, td, tloss) = _WORKER_CACHE[key][spec["pool"]]
    pool, pool_loss = pool_from_arrays(n, d, loss, description=spec["pool"])
    target_pool, target_loss = pool_from_arrays(tn, td, tloss)
    target = PoolTarget(features=target_pool.features, loss=target_loss)
    config = PoolLoopConfig(strategy=spec["strategy"], budget_fractions=tuple(spec["fractions"]),
                            **spec["nuts"], **spec.get("options", {}))
    refitters = _WORKER_CACHE.setdefault("refitters", {})
    start, start_cpu = time.perf_counter(), time.process_time()
    with PurchaseLedger(":memory:") as ledger:
        result = run_pool_loop(jax.random.PRNGKey(spec["seed"]), pool,
                               PoolOracle(pool, pool_loss, ledger), target, config,
                               model=default_pool_model(config, refitters=refitters))
    seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    keep = ("fraction", "spent_fraction", "n_bought", "r2", "coverage90", "width90", "abs_error",
            "n_target")
    return [{"pool": spec["pool"], "strategy": spec["label"], "seed": spec["seed"],
             **{k: c.get(k) for k in keep}, "cell_seconds": seconds, "cell_cpu_seconds": cpu,
             "pool_rows": len(pool), "tau_median": PriorConfig().tau_median,
             "model_revision": spec["model_revision"]}
            for c in result.checkpoints]


def _cell_id(spec: dict) -> str:
    return f"{spec['pool']}|{spec.get('label', spec['strategy'])}|{spec['seed']}"


#: The package files whose change changes a pool cell's result (the model, its fit and
#: predictions, the pool loop): their last commit is the rows' ``model_revision``.
MODEL_FILES = tuple(f"src/bayes_scaling/{name}.py" for name in (
    "model", "law", "posterior", "inference", "features", "pool", "pool_loop",
    "pool_acquisition", "pool_scoring"))


def model_revision(root: Path = ROOT, files: Sequence[str] = MODEL_FILES) -> str:
    """The last commit of ``files`` (``+dirty`` if they have uncommitted changes).

    ``files`` are paths relative to ``root`` (folders included; default :data:`MODEL_FILES`).
    ``unknown`` outside a git checkout. Rows of another revision are another model's. Other
    scripts record their rows' revision with it too (``run2026_quality.py``).
    """
    import subprocess

    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              check=False)
    try:
        log = git("log", "-1", "--format=%h", "--", *files)
        dirty = git("diff", "HEAD", "--quiet", "--", *files).returncode != 0
    except OSError:
        return "unknown"
    revision = log.stdout.strip()
    if log.returncode != 0 or not revision:
        return "unknown"
    return revision + ("+dirty" if dirty else "")


def _finished(rows_path: Path, revision: str | None = None) -> dict[str, list[dict]]:
    """The finished cells of the rows file, by cell (of model ``revision`` only, if given)."""
    done: dict[str, list[dict]] = defaultdict(list)
    if rows_path.exists():
        for line in rows_path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                if revision is None or row.get("model_revision") == revision:
                    done[_cell_id(row)].append(row)
    return done


def drop_stale_rows(rows_path: Path, revision: str) -> int:
    """Remove the rows of another model revision from the rows file; returns how many.

    Their cells then run again, so every table is of one model.
    """
    if not rows_path.exists():
        return 0
    lines = [line for line in rows_path.read_text().splitlines() if line.strip()]
    current = [line for line in lines if json.loads(line).get("model_revision") == revision]
    if len(current) < len(lines):
        atomic_write_text(rows_path, "".join(line + "\n" for line in current))
    return len(lines) - len(current)


def _execute(specs: list[dict], executor: str, workers: int):
    """Yield each cell's rows as it finishes."""
    if executor == "serial" or not specs:
        for spec in specs:
            yield run_cell(spec)
        return
    if executor == "ray":
        import ray

        init_ray(workers)
        try:
            remote = ray.remote(num_cpus=1)(run_cell)
            pending = [remote.remote(s) for s in specs]
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                yield ray.get(ready[0])
        finally:
            ray.shutdown()
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_cell, s) for s in specs]
        for future in as_completed(futures):
            yield future.result()


def _mean_sd(values) -> str:
    v = np.array([x for x in values if x is not None and math.isfinite(x)], np.float64)
    if v.size == 0:
        return "n/a"
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if v.size > 1 else f"{v.mean():.3f}"


def render(rows: list[dict], header: str) -> str:
    """Per pool group, strategy and checkpoint: mean ± sd over seeds (and sub-pools)."""
    groups = defaultdict(list)
    for row in rows:
        groups[row["pool"].split(":")[0]].append(row)
    lines = [header, ""]
    for group in [g for g in POOL_GROUPS if g in groups]:
        part = groups[group]
        pools = sorted({r["pool"] for r in part})
        seeds = sorted({r["seed"] for r in part})
        run = {(r["pool"], r["strategy"], r["seed"]) for r in part
               if r["strategy"] in POOL_STRATEGIES}
        full = FULL_POOLS[group] * len(POOL_STRATEGIES) * FULL_SEEDS
        per_pool = ", ".join(f"{p} {len({c[2] for c in run if c[0] == p})}" for p in pools)
        lines += [f"## {group} ({len(pools)} pool(s), {len(seeds)} seed(s))", "",
                  f"Scale run: {len(run)} of the full run's {full} cells ({FULL_POOLS[group]} "
                  f"pool(s) x {len(POOL_STRATEGIES)} strategies x {FULL_SEEDS} seeds); seeds per "
                  f"pool: {per_pool}.", "",
                  "| strategy | budget | R^2 | 90% coverage | 90% width | runs bought | "
                  "cost spent | s / cell |", "|---|---|---|---|---|---|---|---|"]
        labels = sorted({r["strategy"] for r in part},
                        key=lambda x: (POOL_STRATEGIES.index(x.split(" ")[0]), x))
        for strategy in labels:
            cells = [r for r in part if r["strategy"] == strategy]
            for fraction in sorted({r["fraction"] for r in cells}):
                at = [r for r in cells if r["fraction"] == fraction]
                label = "all" if strategy == "all-data" else f"{fraction:.0%}"
                lines.append(
                    f"| {strategy} | {label} | {_mean_sd(r['r2'] for r in at)} | "
                    f"{_mean_sd(r['coverage90'] for r in at)} | "
                    f"{_mean_sd(r['width90'] for r in at)} | "
                    f"{np.mean([r['n_bought'] for r in at]):.1f} | "
                    f"{np.mean([r['spent_fraction'] for r in at]):.2%} | "
                    f"{np.mean([r['cell_seconds'] for r in at]):.0f} |")
        lines.append("")
    lines += _issue_check(rows)
    lines += _full_run_estimate(rows)
    return "\n".join(lines) + "\n"


#: Pools per group in the full benchmark (Porian: 15 configurations; Gadre: 3 data sets).
FULL_POOLS = {"chinchilla": 1, "porian": 15, "li2025": 1, "gadre": 3}
#: Seeds of the full run (the issue's ten repeats).
FULL_SEEDS = 10


def _full_run_estimate(rows: list[dict], seeds: int = FULL_SEEDS, workers: int = 2) -> list[str]:
    """Wall time of the full run from the measured seconds per cell of each group."""
    per_cell: dict[tuple, float] = {}
    for row in rows:
        if row["strategy"] in POOL_STRATEGIES:  # ablation variants are not in the full run
            per_cell[(row["pool"], row["strategy"], row["seed"])] = row["cell_seconds"]
    total, parts = 0.0, []
    for group, n_pools in FULL_POOLS.items():
        times = [t for (pool, _, _), t in per_cell.items() if pool.split(":")[0] == group]
        if not times:
            return []
        cells = n_pools * len(POOL_STRATEGIES) * seeds
        total += cells * float(np.mean(times))
        parts.append(f"{group} {cells} cells x {np.mean(times):.0f} s")
    return ["## Estimated time of the full run", "",
            f"{seeds} seeds, every pool and strategy: {'; '.join(parts)}: "
            f"{total / 3600:.1f} cell-hours, about {total / workers / 3600:.1f} h wall on "
            f"{workers} workers at the measured (shared-machine) speed.", ""]


def _issue_check(rows: list[dict]) -> list[str]:
    """The issue's target: on Chinchilla at 10%, R^2 within 0.05 of all-data, coverage 80-100%."""
    chin = [r for r in rows if r["pool"] == "chinchilla"]
    full = [r["r2"] for r in chin if r["strategy"] == "all-data"]
    if not full:
        return []
    out = ["## Issue 8 target on Chinchilla (10% of the pool cost)", "",
           f"all-data R^2 {_mean_sd(full)}.", ""]
    for strategy in ("active", "active-region", "v-opt"):
        at = [r for r in chin if r["strategy"] == strategy and r["fraction"] == 0.1]
        if not at:
            continue
        r2 = float(np.mean([r["r2"] for r in at]))
        cover = float(np.mean([r["coverage90"] for r in at]))
        met = r2 >= float(np.mean(full)) - 0.05 and 0.8 <= cover <= 1.0
        out.append(f"- {strategy}: mean R^2 {r2:.3f} (gap {float(np.mean(full)) - r2:+.3f}), "
                   f"mean coverage {cover:.2f}: target {'met' if met else 'NOT met'}")
    return out + [""]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--pools", nargs="+", default=list(POOL_GROUPS),
                        help="pool groups, or single pools such as porian:3")
    parser.add_argument("--strategies", nargs="+", default=list(POOL_STRATEGIES))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    parser.add_argument("--executor", choices=("ray", "process", "serial"), default="ray")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 0))
    parser.add_argument("--tiny", action="store_true", help="smoke-test NUTS sizes")
    parser.add_argument("--out", type=Path, default=RESULTS / "pool_benchmark.md")
    parser.add_argument("--rows", type=Path, default=None,
                        help="JSON-lines of finished cells (default <out stem>.rows.jsonl)")
    parser.add_argument("--note", default="", help="a line for the header")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default=None,
                        help="ablation of the active strategies (rows labelled '<strategy> "
                        "(<variant label>)'): " + "; ".join(
                            f"{k}: {v[1]}" for k, v in sorted(VARIANTS.items())))
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: render every cell of the rows file")
    args = parser.parse_args(argv)
    rows_path = args.rows or args.out.with_suffix(".rows.jsonl")
    names = []
    for item in args.pools:
        group = item.split(":")[0]
        names += [item] if ":" in item else list(load_pools(group, args.data))
    nuts = TINY_NUTS if args.tiny else FULL_NUTS
    variant = VARIANTS[args.variant][0] if args.variant else {}
    revision = model_revision()
    specs = [{"pool": p, "strategy": s, "seed": seed, "fractions": args.fractions,
              "nuts": nuts, "data": str(args.data), "options": variant,
              "model_revision": revision,
              "label": f"{s} ({args.variant.replace('-', ' ')})" if args.variant else s}
             for seed in range(args.seeds) for p in names for s in args.strategies]
    if not args.report_only and (stale := drop_stale_rows(rows_path, revision)):
        print(f"dropped {stale} rows of another model revision than {revision} (last commit of "
              f"the model files); their cells run again", file=sys.stderr)
    done = _finished(rows_path)
    todo = [] if args.report_only else [s for s in specs if _cell_id(s) not in done]
    print(f"{len(specs)} cells, {len(specs) - len(todo)} already in {rows_path}, "
          f"{len(todo)} to run ({args.executor}, {args.workers} worker(s))", file=sys.stderr)
    from tqdm import tqdm

    rows_path.parent.mkdir(parents=True, exist_ok=True)
    with tqdm(total=len(todo), unit="cell", file=sys.stderr) as bar:
        for cell_rows in _execute(todo, args.executor, args.workers):
            with rows_path.open("a") as handle:
                for row in cell_rows:
                    handle.write(json.dumps(row) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            bar.set_postfix_str(f"{cell_rows[0]['pool']} {cell_rows[0]['strategy']}"
                                if cell_rows else "")
            bar.update(1)
    wanted = set(done) | {_cell_id(s) for s in specs} if args.report_only else {
        _cell_id(s) for s in specs}
    rows = [r for cell, rs in _finished(rows_path).items() if cell in wanted for r in rs]
    cells = {_cell_id(r): r for r in rows}  # one entry per cell (rows are per checkpoint)
    seconds = [r["cell_seconds"] for r in cells.values()]
    cpu = [r["cell_cpu_seconds"] for r in cells.values() if "cell_cpu_seconds" in r]
    header = (f"# Pool benchmark (replay on real runs)\n\nProduced by "
              f"`experiments/pool_benchmark.py` ({'tiny' if args.tiny else 'full'} NUTS: "
              f"in-loop {nuts['num_chains']} x ({nuts['num_warmup']} + {nuts['num_samples']}),"
              f" checkpoints {nuts['score_num_chains']} x ({nuts['score_num_warmup']} + "
              f"{nuts['score_num_samples']}); refit every 4 purchases). Mean ± sd over seeds "
              f"(and sub-pools). Budgets are fractions of the pool's total cost; a row that "
              f"would pass a checkpoint waits for the next one. {args.note}\n\n"
              f"Model revision (last commit of the model files): "
              f"{', '.join(sorted({str(r.get('model_revision')) for r in rows})) or 'none'}. "
              f"Cells: {len(cells)}; mean wall time per cell "
              f"{np.mean(seconds) if seconds else float('nan'):.1f} s, CPU time "
              f"{np.mean(cpu) if cpu else float('nan'):.1f} s (one process per cell).")
    table = render(rows, header)
    atomic_write_text(args.out, table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`bayes-scaling run --pool FILE`: the loop over a finite pool of candidate runs.

Replay (every row has a loss: buying reveals it) or planning (rows without a loss: the loop saves
the ranked runs to train next in ``<out>/next_runs.csv`` and stops; fill in their losses in the
pool file and ``run --resume <out>``). Settings are saved to ``<out>/pool_config.json`` first and
every purchase goes to ``<out>/purchases.sqlite`` before it is used, so a killed run resumes
without losing or re-buying anything. Outputs are those of ``run`` (report.json/md, runs.csv of
the bought rows, posterior.nc, figures) plus the checkpoint scores (``pool_scores.csv`` and
``pool_scores.md``, and ``report.json["pool"]``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
from datetime import datetime
from pathlib import Path

import jax
import numpy as np

from bayes_scaling.cli import checks
from bayes_scaling.errors import BayesScalingError, InvalidConfigError
from bayes_scaling.pool_loop import DEFAULT_REGION_STRATEGY

__all__ = [
    "DEFAULT_POOL_STRATEGY",
    "POOL_ONLY_STRATEGIES",
    "add_pool_arguments",
    "handle_pool",
    "is_pool_run",
]

logger = logging.getLogger(__name__)

#: The default pool strategy with target rows (see :data:`DEFAULT_REGION_STRATEGY`).
DEFAULT_POOL_STRATEGY = DEFAULT_REGION_STRATEGY
#: Strategies only pool mode has (``active`` and ``random`` exist in both modes).
POOL_ONLY_STRATEGIES = ("active-region", "v-opt", "cheapest", "cost-random", "all-data")
CONFIG_FILE = "pool_config.json"
LEDGER_FILE = "purchases.sqlite"
NEXT_RUNS_FILE = "next_runs.csv"
_SCORE_COLUMNS = ("fraction", "spent_fraction", "n_bought", "r2", "coverage90", "width90",
                  "abs_error")


def add_pool_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the pool-mode flags to the `run` parser."""
    parser.add_argument("--pool", default=None, metavar="FILE",
                        help="pool mode: candidate runs (any format `fit` reads; optional "
                        "'cost' column; rows without a loss are planned runs)")
    parser.add_argument("--target-rows", default=None, metavar="FILE",
                        help="pool mode: the target region, rows whose loss is to be predicted "
                        "(their losses, if any, are used for scoring only)")
    parser.add_argument("--budget-fraction", type=float, nargs="+", default=None,
                        metavar="F", help="pool mode: budget checkpoints as fractions of the "
                        "pool's total cost (default 0.01 0.05 0.1)")
    parser.add_argument("--queries-per-fit", type=checks.count, default=None,
                        help="pool mode: rows bought per in-loop refit (default 4)")


def is_pool_run(args: argparse.Namespace) -> bool:
    """True for `run --pool`, or `run --resume DIR` of a pool run."""
    return bool(args.pool) or bool(args.resume and (Path(args.resume) / CONFIG_FILE).is_file())


def _settings(args: argparse.Namespace) -> tuple[dict, Path]:
    from bayes_scaling.pool_loop import POOL_STRATEGIES

    if args.resume:
        out = Path(args.resume)
        settings = json.loads((out / CONFIG_FILE).read_text())
        given = {"pool": args.pool, "target_rows": args.target_rows, "target": args.target,
                 "strategy": args.strategy, "seed": args.seed,
                 "budget_fractions": args.budget_fraction,
                 "queries_per_fit": args.queries_per_fit}
        conflicts = [f"--{k.replace('_', '-')} {v} (saved: {settings[k]})"
                     for k, v in given.items() if v is not None and v != settings[k]
                     and not (k in ("pool", "target_rows") and Path(v).resolve()
                              == Path(settings[k] or "").resolve())]
        if conflicts:
            raise InvalidConfigError(f"--resume {out}: refusing flags that differ from the run's "
                                     f"saved settings: {'; '.join(conflicts)}")
        logger.info("resuming pool run %s with its saved settings", out)
        return settings, out
    if args.api_url or args.truth:
        raise InvalidConfigError("--pool: expected no --api-url or --truth (the pool is the data)")
    strategy = args.strategy or (DEFAULT_POOL_STRATEGY if args.target_rows else "active")
    if strategy not in POOL_STRATEGIES:
        raise InvalidConfigError(f"--strategy: expected one of {POOL_STRATEGIES} with --pool, "
                                 f"got {strategy!r}")
    if args.target is None and args.target_rows is None:
        raise InvalidConfigError("--pool: expected --target FLOPS or --target-rows FILE, got "
                                 "neither")
    if args.target is not None and not (math.isfinite(args.target) and args.target > 0):
        raise InvalidConfigError(f"--target: expected a positive number, got {args.target}")
    if strategy in ("active-region", "v-opt") and args.target_rows is None:
        raise InvalidConfigError(f"--strategy {strategy}: expected --target-rows FILE, got none")
    out = Path(args.out) if args.out else Path("runs") / datetime.now().strftime(
        "pool-%Y%m%d-%H%M%S")
    settings = {
        "pool": str(Path(args.pool).resolve()),
        "target_rows": str(Path(args.target_rows).resolve()) if args.target_rows else None,
        "target": args.target, "strategy": strategy, "seed": args.seed or 0,
        "budget_fractions": args.budget_fraction or [0.01, 0.05, 0.1],
        "queries_per_fit": args.queries_per_fit or 4,
        "planned_queries": args.planned_queries or 40,
        "num_warmup": args.num_warmup, "num_samples": args.num_samples,
        "num_chains": args.num_chains,
    }
    checks.output_dir(out)
    if (out / CONFIG_FILE).exists() or (out / "run_config.json").exists():
        raise InvalidConfigError(f"--out {out}: already holds a run; continue it with --resume "
                                 f"{out} or choose another --out")
    return settings, out


def _loop_config(settings: dict):
    from bayes_scaling.pool_loop import PoolLoopConfig

    sizes = {}
    for name in ("num_warmup", "num_samples", "num_chains"):
        if settings.get(name):
            sizes[name] = sizes[f"score_{name}"] = int(settings[name])
    try:
        return PoolLoopConfig(
            strategy=settings["strategy"],
            budget_fractions=tuple(settings["budget_fractions"]),
            queries_per_fit=int(settings["queries_per_fit"]),
            planned_queries=int(settings["planned_queries"]), **sizes,
        )
    except ValueError as exc:
        raise InvalidConfigError(str(exc)) from None


def _target(settings: dict):
    from bayes_scaling.pool import read_pool
    from bayes_scaling.pool_loop import PoolTarget

    features = loss = None
    if settings["target_rows"]:
        rows, loss = read_pool(settings["target_rows"])
        features = rows.features
    return PoolTarget(flops=settings["target"], features=features, loss=loss)


def _write_scores(out: Path, checkpoints: list[dict]) -> None:
    from bayes_scaling.files import atomic_write_text
    from bayes_scaling.runs_io import write_runs_csv

    rows = [{k: c.get(k, float("nan")) for k in _SCORE_COLUMNS} for c in checkpoints]
    for row, c in zip(rows, checkpoints, strict=True):
        for name in ("n_opt", "loss_opt"):
            if name in c:
                row[f"{name}_median"] = c[name]["median"]
                row[f"{name}_ci90_low"], row[f"{name}_ci90_high"] = c[name]["ci90"]
    if rows:
        write_runs_csv(out / "pool_scores.csv", rows)
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])] if rows else []
    lines += ["| " + " | ".join(_cell(v) for v in row.values()) + " |" for row in rows]
    atomic_write_text(out / "pool_scores.md", "# Pool checkpoint scores\n\n" + "\n".join(lines)
                      + "\n")


def _cell(value) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def handle_pool(args: argparse.Namespace) -> int:
    """Run (or resume) a pool-mode loop and write its outputs."""
    from bayes_scaling.files import atomic_write_text
    from bayes_scaling.pool import read_pool
    from bayes_scaling.rundir import RUN_LOCK_NAME, ExclusiveLock, remove_temporary_files

    settings, out = _settings(args)
    config = _loop_config(settings)
    target = _target(settings)
    pool, loss = read_pool(settings["pool"])
    # Everything is checked: from here on files are written (one process per run directory).
    out.mkdir(parents=True, exist_ok=True)
    with ExclusiveLock(out / RUN_LOCK_NAME, what=f"run directory {out}"):
        remove_temporary_files(out)
        if not args.resume:
            if (out / CONFIG_FILE).exists():  # another process started here meanwhile
                raise InvalidConfigError(f"--out {out}: already holds a run; use --resume")
            atomic_write_text(out / CONFIG_FILE, json.dumps(settings, indent=2) + "\n")
        return _run_pool(args, settings, out, config, target, pool, loss)


def _run_pool(args, settings, out, config, target, pool, loss) -> int:
    from bayes_scaling.pool import PoolOracle, PurchaseLedger
    from bayes_scaling.pool_loop import run_pool_loop
    from bayes_scaling.recommend import recommend
    from bayes_scaling.report import write_outputs
    from bayes_scaling.runs_io import write_runs_csv

    print(f"pool: {len(pool)} runs ({int(np.isfinite(loss).sum())} with a loss), total cost "
          f"{pool.total_cost:.4g} ({pool.cost_source}); strategy {config.strategy}")
    key_loop, key_rec, key_fig = jax.random.split(jax.random.PRNGKey(int(settings["seed"])), 3)
    with PurchaseLedger(out / LEDGER_FILE) as ledger:
        oracle = PoolOracle(pool, loss, ledger)
        if oracle.order():
            logger.info("ledger holds %d purchase(s), cost %.4g", len(oracle.order()),
                        oracle.spent)
        result = run_pool_loop(key_loop, pool, oracle, target, config)
        revealed, bought_loss = oracle.revealed()
    if result.next_runs:
        write_runs_csv(out / NEXT_RUNS_FILE, result.next_runs)
        print(f"planning: train these {len(result.next_runs)} run(s) next (saved to "
              f"{out / NEXT_RUNS_FILE}):")
        for row in result.next_runs:
            print(f"  {row['rank']}. pool row {row['pool_row']}: n_params {row['n_params']:.4g}, "
                  f"n_tokens {row['n_tokens']:.4g}, cost {row['cost']:.4g} ({row['reason']})")
        print(f"then fill in their losses in {settings['pool']} and run "
              f"`bayes-scaling run --resume {out}`")
        return 0
    (out / NEXT_RUNS_FILE).unlink(missing_ok=True)
    if result.posterior is None:
        raise BayesScalingError("the pool run bought no row with a loss: nothing to report")
    _write_scores(out, result.checkpoints)
    recommendation = recommend(key_rec, result.posterior, target.compute)
    budget = max(config.budget_fractions) * pool.total_cost
    figures = not args.no_figures and os.environ.get("BAYES_SCALING_NO_FIGURES") != "1"
    extra = {"pool": {"file": settings["pool"], "n_rows": len(pool),
                      "total_cost": pool.total_cost, "cost_source": pool.cost_source,
                      "stop_reason": result.stop_reason, "checkpoints": result.checkpoints,
                      "timings_seconds": result.timings, "settings": settings}}
    write_outputs(out, runs=pool.runs_data(revealed, bought_loss), posterior=result.posterior,
                  recommendation=recommendation, target_flops=target.compute,
                  budget_flops=budget, flops_used=oracle.spent, strategy=config.strategy,
                  extra=extra, rng_key=key_fig, figures=figures)
    print(f"wrote {out}")
    for c in result.checkpoints:
        line = f"  {c['fraction']:.3g} of the pool cost: {c['n_bought']} runs"
        if "r2" in c:
            line += f", R2 {_cell(c['r2'])}, 90% coverage {_cell(c['coverage90'])}"
        if "n_opt" in c:
            n_opt, loss = c["n_opt"], c["loss_opt"]
            line += (f", N_opt {n_opt['median']:.3g} (90% {n_opt['ci90'][0]:.3g}-"
                     f"{n_opt['ci90'][1]:.3g}), L_opt {loss['median']:.3f} (90% "
                     f"{loss['ci90'][0]:.3f}-{loss['ci90'][1]:.3f})")
        print(line)
    return 0

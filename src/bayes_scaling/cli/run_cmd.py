"""`bayes-scaling run`: spend an experiment budget on a training API and plan the target run.

The composition root of the loop: flags -> :class:`~bayes_scaling.loop.LoopConfig` -> a backend
(the in-process simulator, or the HTTP client with ``--api-url``) behind the durable ledger
(``<out>/ledger.sqlite``) -> :func:`~bayes_scaling.loop.run_loop` -> report files. The settings are
saved to ``<out>/run_config.json`` first, so ``--resume <out>`` continues an interrupted run with
the same settings; paid queries are answered from the ledger and never paid twice.
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

from bayes_scaling.errors import BayesScalingError, InvalidConfigError

__all__ = ["register"]

logger = logging.getLogger(__name__)

_SAVED = ("api_url", "truth", "budget", "target", "strategy", "seed", "max_queries",
          "planned_queries", "stop_width", "num_warmup", "num_samples", "num_chains",
          "criterion", "budget_plan")


def register(subparsers) -> None:
    """Add the `run` subcommand."""
    parser = subparsers.add_parser(
        "run",
        help="active-learning loop: spend a budget on a training API, plan the target run",
        description="Spend a FLOP budget on a training API (default: the in-process simulator) "
        "and recommend the compute-optimal configuration at the target compute.",
    )
    parser.add_argument("--api-url", default=None,
                        help="training API base URL (key from $BAYES_SCALING_API_KEY)")
    parser.add_argument("--truth", default=None, help="simulator truth JSON (in-process only)")
    parser.add_argument("--budget", type=float, default=2e18, help="FLOP budget (default 2e18)")
    parser.add_argument("--target", type=float, default=1e19,
                        help="target compute in FLOPs (default 1e19)")
    parser.add_argument("--strategy", choices=("active", "isoflop-grid", "random"),
                        default="active")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="output directory (default runs/<timestamp>)")
    parser.add_argument("--resume", default=None, metavar="DIR",
                        help="continue the interrupted run in DIR with its saved settings")
    parser.add_argument("--max-queries", type=int, default=120,
                        help="safety bound on paid queries (default 120); the run normally "
                        "stops when the budget is spent")
    parser.add_argument("--planned-queries", type=int, default=40,
                        help="active: pace spending over about this many queries: each query "
                        "is priced at least remaining budget / remaining planned queries "
                        "(default 40)")
    parser.add_argument("--stop-width", type=float, default=0.0,
                        help="stop once the N_opt 90%% interval's ln-width is below this "
                        "(default 0: spend the budget)")
    parser.add_argument("--criterion", choices=("n-opt", "decision"), default="n-opt",
                        help="active: n-opt (variance of ln N_opt at the target, default) or "
                        "decision (the regret-weighted risk of size, learning rate and loss)")
    parser.add_argument("--budget-plan", choices=("greedy", "c-optimal"), default="greedy",
                        help="active: greedy (default) or buy only from the c-optimal design "
                        "of the remaining budget, re-solved after every refit")
    parser.add_argument("--no-figures", action="store_true", help="skip the figures")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars and no per-step log lines (bars are also off "
                        "when stderr is not a terminal)")
    # Hidden: NUTS sizes for fast tests (both the loop's fits and the final fit).
    for name in ("--num-warmup", "--num-samples", "--num-chains"):
        parser.add_argument(name, type=int, default=None, help=argparse.SUPPRESS)
    parser.set_defaults(handler=_handle)


def _settings(args: argparse.Namespace) -> tuple[dict, Path]:
    if args.resume:
        out = Path(args.resume)
        saved = out / "run_config.json"
        if not saved.is_file():
            raise InvalidConfigError(f"--resume {out}: no run_config.json there")
        settings = json.loads(saved.read_text())
        logger.info("resuming %s with its saved settings", out)
        return settings, out
    out = Path(args.out) if args.out else Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    settings = {name: getattr(args, name) for name in _SAVED}
    if settings["truth"] is not None:
        settings["truth"] = str(Path(settings["truth"]).resolve())
    if settings["api_url"] and settings["truth"]:
        raise InvalidConfigError("--truth applies to the in-process simulator, not --api-url")
    for name in ("budget", "target"):
        if not (math.isfinite(settings[name]) and settings[name] > 0):
            raise InvalidConfigError(f"--{name}: expected a positive number, got {settings[name]}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "run_config.json").write_text(json.dumps(settings, indent=2) + "\n")
    return settings, out


def _loop_config(settings: dict):
    from bayes_scaling.inference import InferenceConfigError
    from bayes_scaling.loop import LoopConfig

    nuts = {}
    for name in ("num_warmup", "num_samples", "num_chains"):
        if settings.get(name):
            nuts[name] = nuts[f"final_{name}"] = int(settings[name])
    try:
        return LoopConfig.from_flat(
            budget_flops=float(settings["budget"]), target_flops=float(settings["target"]),
            strategy=settings["strategy"], max_queries=int(settings["max_queries"]),
            planned_queries=int(settings.get("planned_queries") or 40),
            stop_ci_width=float(settings["stop_width"]), **nuts,
            criterion=settings.get("criterion") or "n-opt",
            budget_plan=settings.get("budget_plan") or "greedy",
        )
    except (ValueError, InferenceConfigError) as exc:
        raise InvalidConfigError(str(exc)) from None


def _backend(settings: dict):
    if settings["api_url"]:
        from bayes_scaling.api.client import TrainingApiClient

        return TrainingApiClient(settings["api_url"]), None
    from bayes_scaling.simulator.inprocess import SimulatedApi
    from bayes_scaling.simulator.truth import load_truth

    truth = load_truth(settings["truth"])
    return SimulatedApi(truth, float(settings["budget"])), truth


def _handle(args: argparse.Namespace) -> int:
    from bayes_scaling.progress import cli_progress, quiet_logging

    with quiet_logging(args.quiet), cli_progress(quiet=args.quiet) as progress:
        return _run(args, progress)


def _run(args: argparse.Namespace, progress) -> int:
    from bayes_scaling.api.oracle import open_oracle
    from bayes_scaling.loop import run_loop
    from bayes_scaling.progress import LoopProgress
    from bayes_scaling.report import write_outputs

    settings, out = _settings(args)
    config = _loop_config(settings)
    backend, truth = _backend(settings)
    oracle = open_oracle(backend, out / "ledger.sqlite", config.budget_flops)
    try:
        if oracle.observations():
            logger.info("ledger holds %d paid run(s), %.3g FLOPs", len(oracle.observations()),
                        oracle.flops_used())
        bar = LoopProgress(progress, budget_flops=config.budget_flops,
                           flops_used=oracle.flops_used(), n_queries=len(oracle.observations()))
        try:
            result = run_loop(jax.random.PRNGKey(int(settings["seed"])), oracle, config,
                              callback=bar, progress=progress)
        finally:
            bar.close()
    finally:
        oracle.close()
        close = getattr(backend, "close", None)
        if close is not None:
            close()
    if result.posterior is None:
        raise BayesScalingError("the strategy produced no posterior to report")
    extra = {
        "loop": {
            "stop_reason": result.stop_reason,
            "n_queries": len(result.observations),
            "timings_seconds": result.timings,
            "history": result.history,
            "settings": settings,
        },
        "backend": "api" if settings["api_url"] else "in-process simulator",
    }
    extra.update(result.extra)
    if truth is not None:
        from bayes_scaling.scoring import evaluate_recommendation

        extra["evaluation_only"] = evaluate_recommendation(
            truth, result.recommendation, config.target_flops
        )
    figures = not args.no_figures and os.environ.get("BAYES_SCALING_NO_FIGURES") != "1"
    write_outputs(
        out, runs=result.observations, posterior=result.posterior,
        recommendation=result.recommendation, target_flops=config.target_flops,
        budget_flops=config.budget_flops, flops_used=result.flops_used,
        strategy=config.strategy, extra=extra, figures=figures, progress=progress,
        rng_key=jax.random.fold_in(jax.random.PRNGKey(int(settings["seed"])), 1),
    )
    rec = result.recommendation
    print(f"wrote {out}")
    print(
        f"recommended at {config.target_flops:.3g} FLOPs: d_model={rec.d_model} "
        f"num_layers={rec.num_layers} num_heads={rec.num_heads} batch_size={rec.batch_size} "
        f"learning_rate={rec.learning_rate:.3g} ({rec.non_embedding_params:,} non-embedding "
        f"params, {rec.tokens:.3g} tokens)"
    )
    return 0

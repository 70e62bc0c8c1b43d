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
          "planned_queries", "stop_width", "num_warmup", "num_samples", "num_chains")


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
    parser.add_argument("--no-figures", action="store_true", help="skip the figures")
    parser.add_argument("--api", choices=("2025", "2026"), default=None,
                        help="which training API --api-url speaks (default: probe it); 2026: "
                        "--budget is in B200-seconds")
    parser.add_argument("--target-hours", type=float, default=48.0,
                        help="--api 2026: B200-hours of the run to plan (default 48)")
    parser.add_argument("--max-in-flight", type=int, default=4,
                        help="--api 2026: most runs queued or running at once (default 4)")
    parser.add_argument("--final-submit", action="store_true",
                        help="--api 2026: POST the recommended config to /final_submission")
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
    from bayes_scaling.loop import LoopConfig

    nuts = {}
    for name in ("num_warmup", "num_samples", "num_chains"):
        if settings.get(name):
            nuts[name] = nuts[f"final_{name}"] = int(settings[name])
    try:
        return LoopConfig(
            budget_flops=float(settings["budget"]), target_flops=float(settings["target"]),
            strategy=settings["strategy"], max_queries=int(settings["max_queries"]),
            planned_queries=int(settings.get("planned_queries") or 40),
            stop_ci_width=float(settings["stop_width"]), **nuts,
        )
    except ValueError as exc:
        raise InvalidConfigError(str(exc)) from None


def _backend(settings: dict):
    if settings["api_url"]:
        from bayes_scaling.api.client import TrainingApiClient

        return TrainingApiClient(settings["api_url"]), None
    from bayes_scaling.simulator.inprocess import SimulatedApi
    from bayes_scaling.simulator.truth import load_truth

    truth = load_truth(settings["truth"])
    return SimulatedApi(truth, float(settings["budget"])), truth


def _plot_progress(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayes_scaling.report import save_figure

    fig, (ax_n, ax_loss) = plt.subplots(1, 2, figsize=(9, 3.5))
    flops = [h["flops_used"] for h in history]
    ax_n.plot(flops, [h["n_opt_ci90_ln_width"] for h in history], "o-")
    ax_n.set(xscale="log", xlabel="FLOPs spent", ylabel="ln-width of N_opt 90% interval",
             title="N_opt at the target")
    ax_loss.plot(flops, [h["loss_ci90_width"] for h in history], "o-", color="C1")
    ax_loss.set(xscale="log", xlabel="FLOPs spent", ylabel="width of loss 90% interval",
                title="optimal loss at the target")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def _handle(args: argparse.Namespace) -> int:
    from bayes_scaling.api.oracle import open_oracle
    from bayes_scaling.cli.run2026 import api_of, handle_2026
    from bayes_scaling.loop import run_loop
    from bayes_scaling.report import write_outputs

    if api_of(args) == "2026":
        return handle_2026(args)
    settings, out = _settings(args)
    config = _loop_config(settings)
    backend, truth = _backend(settings)
    oracle = open_oracle(backend, out / "ledger.sqlite", config.budget_flops)
    try:
        if oracle.observations():
            logger.info("ledger holds %d paid run(s), %.3g FLOPs", len(oracle.observations()),
                        oracle.flops_used())
        result = run_loop(jax.random.PRNGKey(int(settings["seed"])), oracle, config)
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
        strategy=config.strategy, extra=extra, figures=figures,
    )
    if figures:
        _plot_progress(result.history, out / "loop_progress.png")
    rec = result.recommendation
    print(f"wrote {out}")
    print(
        f"recommended at {config.target_flops:.3g} FLOPs: d_model={rec.d_model} "
        f"num_layers={rec.num_layers} num_heads={rec.num_heads} batch_size={rec.batch_size} "
        f"learning_rate={rec.learning_rate:.3g} ({rec.non_embedding_params:,} non-embedding "
        f"params, {rec.tokens:.3g} tokens)"
    )
    return 0

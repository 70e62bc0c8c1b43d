"""`bayes-scaling run`: spend an experiment budget on a training API and plan the target run.

The composition root of the loop: flags -> :class:`~bayes_scaling.loop.LoopConfig` -> a backend
(the in-process simulator, or the HTTP client with ``--api-url``) behind the durable ledger
(``<out>/ledger.sqlite``) -> :func:`~bayes_scaling.loop.run_loop` -> report files.

- Every flag, the truth file, the key and the budget (against the strategy's minimum) are checked
  before anything is created or paid.
- One process owns a run directory: an exclusive lock (``<out>/.bayes-scaling.lock``) is held for
  the whole run or resume, and the ledger has its own. Leftover temporary files of a killed write
  are removed on start and resume.
- The settings are saved to ``<out>/run_config.json`` first, so ``--resume <out>`` continues
  exactly that run: a flag that differs from the saved settings is refused with the differences
  listed, except a larger ``--max-queries`` and ``--no-figures`` (applied and recorded). The
  ledger is tied to the API key it was started with. Paid queries are answered from the ledger
  and never paid twice.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
from datetime import datetime, timezone
from pathlib import Path

from bayes_scaling.cli import checks
from bayes_scaling.cli.pool_run import (
    DEFAULT_POOL_STRATEGY,
    POOL_ONLY_STRATEGIES,
    add_pool_arguments,
    handle_pool,
    is_pool_run,
)
from bayes_scaling.errors import BayesScalingError, InvalidApiKeyError, InvalidConfigError
from bayes_scaling.textfile import read_text

__all__ = ["register"]

logger = logging.getLogger(__name__)

CONFIG_NAME = "run_config.json"
LEDGER_NAME = "ledger.sqlite"

#: Settings saved in run_config.json, with their defaults (flags default to None, so a flag the
#: user gave can be told from one left out).
DEFAULTS = {
    "api_url": None, "truth": None, "budget": 2e18, "target": 1e19, "strategy": "active",
    "seed": 0, "max_queries": 120, "planned_queries": 40, "stop_width": 0.0,
    "num_warmup": None, "num_samples": None, "num_chains": None, "no_figures": False,
    "criterion": "decision", "budget_plan": "greedy",
}
#: What a saved run_config.json without a key ran with: runs saved before ``criterion`` was a
#: setting, or before ``decision`` became the default, resume with the criterion they started
#: with.
_MISSING_IN_OLD_SAVES = {"criterion": "n-opt"}
_SAVED = tuple(DEFAULTS)
#: Settings a resume may change: (name, is the change safe for these old and new values).
_SAFE_ON_RESUME = {
    "max_queries": lambda old, new: new >= old,
    "no_figures": lambda old, new: True,
}


def register(subparsers) -> None:
    """Add the `run` subcommand."""
    parser = subparsers.add_parser(
        "run",
        help="active-learning loop: spend a budget on a training API, plan the target run",
        description="Spend a FLOP budget on a training API (default: the in-process simulator) "
        "and recommend the compute-optimal configuration at the target compute.",
    )
    parser.add_argument("--api-url", default=None, type=checks.api_url,
                        help="training API base URL (key from $BAYES_SCALING_API_KEY)")
    parser.add_argument("--truth", default=None,
                        help="simulator truth JSON (in-process only; a 2026 truth with --api 2026)")
    parser.add_argument("--budget", type=checks.positive_number, default=None,
                        help="FLOP budget (default 2e18)")
    parser.add_argument("--target", type=checks.positive_number, default=None,
                        help="target compute in FLOPs (default 1e19)")
    parser.add_argument("--strategy", choices=("active", "isoflop-grid", "random",
                                               *POOL_ONLY_STRATEGIES), default=None,
                        help="active: Bayesian experiment design (default); isoflop-grid: the "
                        "fixed Chinchilla-style baseline; random: random valid queries; with "
                        f"--pool also {', '.join(POOL_ONLY_STRATEGIES)} (default "
                        f"{DEFAULT_POOL_STRATEGY} with --target-rows)")
    parser.add_argument("--seed", type=checks.seed, default=None,
                        help=f"random seed of the design, the fits and the figures, in "
                        f"[0, {checks.MAX_SEED}] (default 0)")
    parser.add_argument("--out", default=None, help="output directory (default runs/<timestamp>)")
    parser.add_argument("--resume", default=None, metavar="DIR",
                        help="continue the interrupted run in DIR with its saved settings "
                        "(other flags must match them; a larger --max-queries and "
                        "--no-figures are applied)")
    parser.add_argument("--max-queries", type=checks.count, default=None,
                        help="safety bound on paid queries (default 120); the run normally "
                        "stops when the budget is spent")
    parser.add_argument("--planned-queries", type=checks.count, default=None,
                        help="active: pace spending over about this many queries: each query "
                        "is priced at least remaining budget / remaining planned queries "
                        "(default 40)")
    parser.add_argument("--stop-width", type=checks.nonnegative_number, default=None,
                        help="stop once the N_opt 90%% interval's ln-width is below this "
                        "(default 0: spend the budget)")
    parser.add_argument("--criterion", choices=("n-opt", "decision"), default=None,
                        help="active: decision (the regret-weighted risk of size, learning rate "
                        "and loss at the target; default) or n-opt (the variance of ln N_opt "
                        "at the target alone)")
    parser.add_argument("--budget-plan", choices=("greedy", "c-optimal"), default=None,
                        help="active: greedy (default) or buy only from the c-optimal design "
                        "of the remaining budget, re-solved after every refit")
    parser.add_argument("--no-figures", action="store_true", default=None,
                        help="skip the figures")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars and no per-step log lines (bars are also off "
                        "when stderr is not a terminal)")
    for name, what in (("--num-warmup", "warmup steps"), ("--num-samples", "draws per chain"),
                       ("--num-chains", "chains")):
        parser.add_argument(name, type=checks.count, default=None,
                            help=f"NUTS {what} of both the in-loop fits and the final fit "
                            "(default: the loop's own settings)")
    add_pool_arguments(parser)
    parser.add_argument("--api", choices=("2025", "2026"), default=None,
                        help="which training API --api-url speaks (default: probe it); 2026: "
                        "--budget is in B200-seconds, and without --api-url the simulated 2026 "
                        "API is served from this process")
    parser.add_argument("--target-hours", type=checks.positive_number, default=48.0,
                        help="--api 2026: B200-hours of the run to plan (default 48)")
    parser.add_argument("--max-in-flight", type=checks.count, default=4,
                        help="--api 2026: most runs queued or running at once (default 4)")
    parser.add_argument("--final-submit", action="store_true",
                        help="--api 2026: POST the recommended config to /final_submission")
    parser.set_defaults(handler=_handle)


# -- settings ---------------------------------------------------------------------------------


def _given(args: argparse.Namespace) -> dict:
    given = {name: getattr(args, name) for name in _SAVED if getattr(args, name) is not None}
    if given.get("truth") is not None:
        given["truth"] = str(Path(given["truth"]).resolve())
    return given


def _new_settings(args: argparse.Namespace) -> tuple[dict, Path]:
    settings = {**DEFAULTS, **_given(args)}
    out = Path(args.out) if args.out else Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    checks.output_dir(out)
    for name in (CONFIG_NAME, LEDGER_NAME):
        if (out / name).exists():
            raise InvalidConfigError(
                f"--out {out}: already holds a run ({name}); continue it with --resume {out} "
                "or choose another --out"
            )
    return settings, out


def read_saved_json(out: Path) -> dict:
    """The JSON object in ``out``'s run_config.json; one-line errors for anything else."""
    path = out / CONFIG_NAME
    if not out.is_dir():
        raise InvalidConfigError(f"--resume {out}: no such run directory")
    if not path.is_file():
        raise InvalidConfigError(f"--resume {out}: no {CONFIG_NAME} there")
    text = read_text(path, what="run configuration", error=InvalidConfigError)
    try:
        saved = json.loads(text)
    except ValueError as exc:
        raise InvalidConfigError(f"{path}: not a readable run configuration ({exc})") from None
    if not isinstance(saved, dict):
        raise InvalidConfigError(
            f"{path}: expected an object with the run's settings, got {type(saved).__name__}"
        )
    return saved


def _read_saved(out: Path) -> dict:
    path = out / CONFIG_NAME
    saved = read_saved_json(out)
    if not set(saved) >= {"budget", "target", "strategy"}:
        raise InvalidConfigError(
            f"{path}: expected an object with the run's settings, got {type(saved).__name__}"
        )
    settings = {**DEFAULTS, **_MISSING_IN_OLD_SAVES,
                **{k: v for k, v in saved.items() if k in DEFAULTS}}
    _check_saved(path, settings)
    settings["resumes"] = list(saved.get("resumes", []))
    return settings


def _check_saved(path: Path, settings: dict) -> None:
    def bad(name, expected):
        return InvalidConfigError(f"{path}: {name}: expected {expected}, got {settings[name]!r}")

    for name in ("budget", "target"):
        value = settings[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0
        ):
            raise bad(name, "a positive number")
    if settings["strategy"] not in ("active", "isoflop-grid", "random"):
        raise bad("strategy", "active, isoflop-grid or random")
    for name in ("seed", "max_queries", "planned_queries", "num_warmup", "num_samples",
                 "num_chains"):
        value = settings[name]
        if value is None and name.startswith("num_"):
            continue
        low = 0 if name == "seed" else 1
        high = checks.MAX_SEED if name == "seed" else checks.MAX_COUNT
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise bad(name, f"an integer in [{low}, {high}]")
    for name in ("api_url", "truth"):
        if settings[name] is not None and not isinstance(settings[name], str):
            raise bad(name, "a string or null")


def _resume_settings(args: argparse.Namespace) -> tuple[dict, Path, dict]:
    out = Path(args.resume)
    settings = _read_saved(out)
    conflicts, changes = [], {}
    for name, value in _given(args).items():
        old = settings[name]
        if old == value:
            continue
        safe = _SAFE_ON_RESUME.get(name)
        if safe is not None and safe(old, value):
            changes[name] = value
        else:
            conflicts.append(f"--{name.replace('_', '-')} {value} (saved: {old})")
    if args.out and Path(args.out).resolve() != out.resolve():
        conflicts.append(f"--out {args.out} (the run is in {out})")
    if conflicts:
        raise InvalidConfigError(
            f"--resume {out}: refusing flags that differ from the run's saved settings: "
            f"{'; '.join(conflicts)}"
        )
    settings.update(changes)
    return settings, out, changes


def _check_settings(settings: dict) -> None:
    if settings["strategy"] not in ("active", "isoflop-grid", "random"):
        raise InvalidConfigError(f"--strategy {settings['strategy']}: expected active, "
                                 "isoflop-grid or random without --pool")
    check_backend_flags(settings["api_url"], settings["truth"])


def check_backend_flags(api_url: str | None, truth: str | None) -> None:
    """Refuse a bad ``--api-url`` and ``--truth`` beside ``--api-url``, before any request."""
    if api_url and truth:
        raise InvalidConfigError("--truth applies to the in-process simulator, not --api-url")
    if api_url is not None and checks.url_error(api_url) is not None:
        raise InvalidConfigError(f"--api-url: {checks.url_error(api_url)}")


def _loop_config(settings: dict):
    from bayes_scaling.inference import InferenceConfigError
    from bayes_scaling.loop import LoopConfig, minimum_budget

    nuts = checks.nuts_overrides(settings)
    try:
        config = LoopConfig.from_flat(
            budget_flops=float(settings["budget"]), target_flops=float(settings["target"]),
            strategy=settings["strategy"], max_queries=int(settings["max_queries"]),
            planned_queries=int(settings["planned_queries"]),
            stop_ci_width=float(settings["stop_width"]), **nuts,
            criterion=settings["criterion"],
            budget_plan=settings["budget_plan"],
        )
    except (ValueError, InferenceConfigError) as exc:
        raise InvalidConfigError(str(exc)) from None
    needed = minimum_budget(config)
    if config.budget_flops < needed:
        raise InvalidConfigError(
            f"--budget: the {config.strategy} strategy needs at least {needed:g} FLOPs, "
            f"got {config.budget_flops:g}"
        )
    return config


def _backend(settings: dict):
    """Return ``(backend, truth, api_key)``; nothing is created or sent."""
    if settings["api_url"]:
        from bayes_scaling.api.client import KEY_ENV, TrainingApiClient

        key = os.environ.get(KEY_ENV, "").strip()
        if not key:
            raise InvalidApiKeyError(f"--api-url needs an API key: ${KEY_ENV} is not set")
        return TrainingApiClient(settings["api_url"], key), None, key
    from bayes_scaling.simulator.inprocess import SimulatedApi
    from bayes_scaling.simulator.truth import load_truth

    truth = load_truth(settings["truth"])
    return SimulatedApi(truth, float(settings["budget"])), truth, None


def _save(out: Path, settings: dict) -> None:
    from bayes_scaling.files import atomic_write_text

    atomic_write_text(out / CONFIG_NAME, json.dumps(settings, indent=2) + "\n")


# -- the run ----------------------------------------------------------------------------------


def _handle(args: argparse.Namespace) -> int:
    from bayes_scaling.cli.run2026 import api_of, handle_2026

    if api_of(args) == "2026":
        return handle_2026(args)
    from bayes_scaling.progress import cli_progress, quiet_logging
    from bayes_scaling.rundir import RUN_LOCK_NAME, ExclusiveLock, remove_temporary_files

    if is_pool_run(args):
        return handle_pool(args)
    if args.resume:
        settings, out, changes = _resume_settings(args)
    else:
        settings, out = _new_settings(args)
        changes = None
    _check_settings(settings)
    config = _loop_config(settings)
    backend, truth, api_key = _backend(settings)
    # Everything is checked: from here on files are created and queries may be paid.
    try:
        out.mkdir(parents=True, exist_ok=True)
        with ExclusiveLock(out / RUN_LOCK_NAME, what=f"run directory {out}"):
            remove_temporary_files(out)
            if changes is None:
                if (out / CONFIG_NAME).exists():  # another process started here meanwhile
                    raise InvalidConfigError(f"--out {out}: already holds a run; use --resume")
                _save(out, settings)
            elif changes:
                settings["resumes"].append({
                    "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "changed": changes,
                })
                _save(out, settings)
                logger.info("resuming %s; applied %s", out,
                            ", ".join(f"{k}={v}" for k, v in changes.items()))
            else:
                logger.info("resuming %s with its saved settings", out)
            with quiet_logging(args.quiet), cli_progress(quiet=args.quiet) as progress:
                return _run(out, settings, config, backend, truth, api_key, progress)
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()


def _run(out: Path, settings: dict, config, backend, truth, api_key, progress) -> int:
    import jax

    from bayes_scaling.api.oracle import open_oracle
    from bayes_scaling.loop import run_loop
    from bayes_scaling.progress import LoopProgress
    from bayes_scaling.report import write_outputs

    oracle = open_oracle(backend, out / LEDGER_NAME, config.budget_flops, api_key=api_key)
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
        failed = [c.to_query() for c in oracle.failed_queries()]
    finally:
        oracle.close()
    if result.posterior is None:
        raise BayesScalingError("the strategy produced no posterior to report")
    extra = {
        "loop": {
            "stop_reason": result.stop_reason,
            "n_queries": len(result.observations),
            "failed_queries": failed,
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
    figures = not settings["no_figures"] and os.environ.get("BAYES_SCALING_NO_FIGURES") != "1"
    write_outputs(
        out, runs=result.observations, posterior=result.posterior,
        recommendation=result.recommendation, target_flops=config.target_flops,
        budget_flops=config.budget_flops, flops_used=result.flops_used,
        strategy=config.strategy, extra=extra, figures=figures, progress=progress,
        rng_key=jax.random.fold_in(jax.random.PRNGKey(int(settings["seed"])), 1),
    )
    rec = result.recommendation
    print(f"wrote {out}")
    if failed:
        print(f"note: {len(failed)} paid query(ies) answered no usable loss; kept in the ledger "
              "as failed queries, not fitted")
    print(
        f"recommended at {config.target_flops:.3g} FLOPs: d_model={rec.d_model} "
        f"num_layers={rec.num_layers} num_heads={rec.num_heads} batch_size={rec.batch_size} "
        f"learning_rate={rec.learning_rate:.3g} ({rec.non_embedding_params:,} non-embedding "
        f"params, {rec.tokens:.3g} tokens)"
    )
    return 0

"""`bayes-scaling run --api 2026`: spend a seconds budget on the 2026 job API, plan a 48-h run.

The composition root of the 2026 path: flags -> :class:`~bayes_scaling.jobs_loop.JobsLoopConfig`
-> :class:`~bayes_scaling.api2026.client.JobsApiClient` (key from ``$BAYES_SCALING_API_KEY``)
behind the durable ledger ``<out>/ledger2026.sqlite`` ->
:func:`~bayes_scaling.jobs_loop.run_jobs_loop` -> the outputs of ``run`` (report.json with
DESIGN §5's keys plus ``recommended.training_config``, report.md, runs.csv, posterior.nc,
figures) and:

- ``final_training_config.json``: the complete TrainingConfig to submit for the target;
- ``experiments2026.json``: every ledger row (configuration, state, experiment id, curve);
- ``final_submission.json``: the server's answer to ``--final-submit``.

``--resume DIR`` reopens the ledger and the saved settings: the ledger is reconciled with
``GET /experiments`` first, so nothing is submitted twice and runs that ended meanwhile are
collected.

Without ``--api-url`` the loop talks to the simulated 2026 job API served from a thread of this
process (:func:`~bayes_scaling.simulator.embedded.serve_in_thread`, the app of ``serve --api
2026``) over loopback HTTP, so the same client, ledger and reconciliation run offline. Its
SQLite file is ``<out>/simulator2026.sqlite3`` (experiments, budget and simulated clock; a
resumed run finds them there), its clock runs ``EMBEDDED_TIME_SCALE`` simulated seconds per wall
second, ``--truth`` may name a 2026 truth JSON, and ``--budget`` defaults to the course's
43,200 B200-seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
from datetime import datetime
from pathlib import Path

import jax
import numpy as np

from bayes_scaling.cli import checks
from bayes_scaling.errors import InvalidConfigError

__all__ = ["EMBEDDED_KEY", "EMBEDDED_TIME_SCALE", "api_of", "handle_2026", "run_2026"]

logger = logging.getLogger(__name__)

_SAVED = ("api_url", "truth", "budget", "target_hours", "max_in_flight", "seed",
          "planned_queries", "max_queries", "num_warmup", "num_samples", "num_chains")
#: Simulated seconds per wall second of the embedded simulator (a 30-minute run takes 0.6 s).
EMBEDDED_TIME_SCALE = 3000.0
#: The one key the embedded simulator accepts (it listens on loopback only).
EMBEDDED_KEY = "sim-key"
#: The embedded simulator's file in the run directory.
EMBEDDED_DB = "simulator2026.sqlite3"


def api_of(args: argparse.Namespace) -> str:
    """Which API ``run`` speaks: ``--api``, a resumed run's saved choice, or a probe of the URL."""
    if args.resume:
        from bayes_scaling.cli.run_cmd import read_saved_json

        out = Path(args.resume)
        if not (out / "run_config.json").is_file():  # a pool run, or no run: checked downstream
            return "2025"
        return str(read_saved_json(out).get("api", "2025"))
    if args.api or not args.api_url:
        return args.api or "2025"
    from bayes_scaling.api.client import api_key_or_env
    from bayes_scaling.api2026.client import detect_api
    from bayes_scaling.cli.run_cmd import check_backend_flags

    check_backend_flags(args.api_url, args.truth)

    return detect_api(args.api_url, api_key_or_env())  # no key: refused before any request


def handle_2026(args: argparse.Namespace) -> int:
    """``run`` on the 2026 API: the output folder, held under the run-directory lock."""
    from bayes_scaling.cli.run_cmd import read_saved_json
    from bayes_scaling.rundir import RUN_LOCK_NAME, ExclusiveLock, remove_temporary_files

    resumed = None
    if args.resume:
        out = Path(args.resume)
        resumed = read_saved_json(out)
        if resumed.get("api") != "2026":
            raise InvalidConfigError(f"--resume {out}: not a run of the 2026 API")
        logger.info("resuming %s with its saved settings", out)
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path(args.out) if args.out else Path("runs") / stamp
        if (out / "run_config.json").exists():
            raise InvalidConfigError(f"--out {out}: already holds a run; use --resume {out}")
        out.mkdir(parents=True, exist_ok=True)
    figures = not args.no_figures and os.environ.get("BAYES_SCALING_NO_FIGURES") != "1"
    with ExclusiveLock(out / RUN_LOCK_NAME, what=f"run directory {out}"):
        remove_temporary_files(out)
        return run_2026(args, out, resumed, figures=figures)


def _loop_config(settings: dict):
    from bayes_scaling.jobs_loop import JobsLoopConfig

    nuts = checks.nuts_overrides(settings)
    try:
        return JobsLoopConfig(
            target_hours=float(settings["target_hours"]),
            max_in_flight=int(settings["max_in_flight"]),
            planned_runs=int(settings.get("planned_queries") or 40),
            max_runs=int(settings.get("max_queries") or 120), **nuts,
        )
    except ValueError as exc:
        raise InvalidConfigError(str(exc)) from None


def _settings(args, out: Path, resumed: dict | None) -> dict:
    if resumed is not None:
        return resumed
    from bayes_scaling.simulator.store2026 import TOTAL_BUDGET_SECONDS

    settings = {name: getattr(args, name, None) for name in _SAVED}
    if settings["api_url"]:
        if settings["truth"]:
            raise InvalidConfigError("--truth applies to the embedded simulator, not --api-url")
    else:
        settings["embedded_time_scale"] = EMBEDDED_TIME_SCALE
        if settings["truth"]:
            from bayes_scaling.simulator.truth2026 import load_truth_2026

            load_truth_2026(settings["truth"])  # refused before run_config.json is written
            settings["truth"] = str(Path(settings["truth"]).resolve())
        if settings["budget"] is None:
            settings["budget"] = TOTAL_BUDGET_SECONDS
    budget = settings["budget"]
    if budget is None:
        raise InvalidConfigError("--api 2026: expected --budget SECONDS (B200-seconds), got none")
    if settings["seed"] is None:
        settings["seed"] = 0
    if not (math.isfinite(budget) and 1 <= budget <= 1e7):
        raise InvalidConfigError(
            f"--budget: expected B200-seconds in [1, 1e7] with --api 2026, got {budget:g}"
        )
    if settings["target_hours"] is None:
        settings["target_hours"] = 48.0
    if settings["max_in_flight"] is None:
        settings["max_in_flight"] = 4
    settings["api"] = "2026"
    return settings


def _rows(oracle) -> list[dict]:
    return [
        {"seq": s.seq, "unique_id": s.unique_id, "experiment_id": s.experiment_id,
         "state": s.state, "note": s.note, "charged_seconds": s.charged_seconds,
         "used_runtime_seconds": s.used_runtime_seconds, "val_losses": s.val_losses,
         "failure": s.failure, "training_config": s.config.model_dump(mode="json")}
        for s in oracle.ledger.entries()
    ]


def run_2026(args, out: Path, resumed: dict | None, *, figures: bool) -> int:
    """Run the 2026 loop for ``bayes-scaling run --api 2026``; returns the exit status.

    ``out`` exists; ``resumed`` holds the saved settings of ``--resume`` (None for a new run).
    """
    from bayes_scaling.api2026.client import JobsApiClient
    from bayes_scaling.api2026.jobs_oracle import JobsOracle
    from bayes_scaling.api2026.ledger import Ledger
    from bayes_scaling.files import atomic_write_text

    settings = _settings(args, out, resumed)
    if resumed is None:
        atomic_write_text(out / "run_config.json", json.dumps(settings, indent=2) + "\n")
    config = _loop_config(settings)
    with contextlib.ExitStack() as stack:
        url, key = _api(settings, out, stack)
        client = JobsApiClient(url, key)
        stack.callback(client.close)
        oracle = JobsOracle(client, Ledger(out / "ledger2026.sqlite"), float(settings["budget"]))
        stack.callback(oracle.close)
        result, final_response, rows = _run_loop(args, out, settings, config, oracle)
    return _write_run(out, settings, result, final_response, rows, figures=figures)


def _api(settings: dict, out: Path, stack: contextlib.ExitStack) -> tuple[str, str | None]:
    """The API's base URL and key: ``--api-url`` or the embedded simulator.

    With ``--api-url`` the key is None (the client reads the environment). The embedded
    simulator is started on ``stack``, which stops it and closes its file.
    """
    if settings.get("api_url"):
        return settings["api_url"], None
    from bayes_scaling.simulator.embedded import serve_in_thread
    from bayes_scaling.simulator.server2026 import create_app_2026
    from bayes_scaling.simulator.store2026 import Store2026
    from bayes_scaling.simulator.truth2026 import load_truth_2026

    truth = load_truth_2026(settings.get("truth"))
    scale = float(settings.get("embedded_time_scale", EMBEDDED_TIME_SCALE))
    store = Store2026(out / EMBEDDED_DB, time_scale=scale)
    stack.callback(store.close)
    app = create_app_2026(store=store, truth=truth, allowed_keys=[EMBEDDED_KEY])
    url = stack.enter_context(serve_in_thread(app, lifespan="on"))
    logger.info("embedded 2026 simulator at %s (time scale %g; truth %s; file %s)", url, scale,
                settings.get("truth") or "default preset", out / EMBEDDED_DB)
    return url, EMBEDDED_KEY


def _run_loop(args, out: Path, settings: dict, config, oracle):
    """Reconcile, run the loop, post the final submission if asked; ``(result, response, rows)``."""
    from bayes_scaling.files import atomic_write_text
    from bayes_scaling.jobs_loop import run_jobs_loop

    oracle.sync()
    server = oracle.refresh_budget()
    logger.info("ledger holds %d submission(s); %.0f s committed; server has %.0f s left",
                len(oracle.ledger), oracle.budget_committed(), server)
    result = run_jobs_loop(jax.random.PRNGKey(int(settings["seed"])), oracle, config)
    final_response = None
    if args.final_submit:
        median = float(np.median(result.recommendation.predicted_loss))
        final_response = oracle.submit_final(result.training_config, median)
        atomic_write_text(out / "final_submission.json",
                          json.dumps(final_response.model_dump(mode="json"), indent=2) + "\n")
    return result, final_response, _rows(oracle)


def _write_run(out: Path, settings: dict, result, final_response, rows, *, figures: bool) -> int:
    """The run's outputs (report, figures, JSON files) and its one-line summary; returns 0."""
    from bayes_scaling.candidates2026 import LAW_FAMILY, law_features, law_run_config
    from bayes_scaling.files import atomic_write_text
    from bayes_scaling.oracle import Observation
    from bayes_scaling.report import write_outputs
    from bayes_scaling.runs_io import runs_from_observations
    from bayes_scaling.runtime_model import run_flops
    from bayes_scaling.summary import summarize

    completed = [o for o in result.outcomes if o.state == "completed"]
    observations = runs_from_observations(
        [Observation(config=law_run_config(o.config), loss=o.final_loss) for o in completed],
        features=law_features([o.config for o in completed]),
        description=f"{len(completed)} completed 2026 runs; N = {LAW_FAMILY.description}; "
                    "tokens = total_train_tokens (train_flops = 6 N tokens)",
    )
    charged = [o for o in result.outcomes]
    flops_used = float(sum(run_flops(o.config) for o in charged))
    seconds_used = float(sum(o.charged for o in charged))
    rate = flops_used / seconds_used if seconds_used > 0 else float("nan")
    final_json = result.training_config.model_dump(mode="json")
    atomic_write_text(out / "final_training_config.json", json.dumps(final_json, indent=2) + "\n")
    atomic_write_text(out / "experiments2026.json", json.dumps(rows, indent=2) + "\n")
    extra = {
        "api": "2026",
        "budget_unit": "seconds",
        "budget_seconds": float(settings["budget"]),
        "seconds_used": seconds_used,
        "target_hours": float(settings["target_hours"]),
        "budget_flops_note": "budget_flops = budget seconds x the runs' mean FLOP/s; flops_used "
                             "= FLOPs of every ended run (spec section 4 per-token FLOPs)",
        "n_failed": sum(o.state == "failed" for o in result.outcomes),
        "n_timeouts": sum(o.failure == "timeout" for o in result.outcomes),
        "fit_uses": "the final validation loss of each completed run (no intermediate "
                    "checkpoints, no failed runs)",
        "param_count_model": LAW_FAMILY.description,
        "count_family": LAW_FAMILY.as_dict(),
        **result.extra,
        "runtime_model": result.runtime,
        "predicted_seconds_of_recommended": result.predicted_seconds,
        "loop": {"stop_reason": result.stop_reason, "history": result.history,
                 "timings_seconds": result.timings,
                 "max_in_flight_seen": result.max_in_flight_seen, "settings": settings},
        "backend": ("api 2026" if settings.get("api_url") else
                    f"embedded 2026 simulator (time scale "
                    f"{settings.get('embedded_time_scale', EMBEDDED_TIME_SCALE):g})"),
    }
    write_outputs(
        out, runs=observations, posterior=result.posterior,
        recommendation=result.recommendation, target_flops=result.target_flops,
        budget_flops=float(settings["budget"]) * rate, flops_used=flops_used,
        strategy="active", extra=extra, figures=figures,
        rng_key=jax.random.fold_in(jax.random.PRNGKey(int(settings["seed"])), 1),
    )
    report = json.loads((out / "report.json").read_text())
    report["recommended"]["training_config"] = final_json
    report["recommended"]["predicted_loss"] = summarize(result.recommendation.predicted_loss)
    if final_response is not None:
        report["final_submission"] = final_response.model_dump(mode="json")
    atomic_write_text(out / "report.json", json.dumps(report, indent=2) + "\n")
    arch = result.training_config.architecture_config
    pred = report["recommended"]["predicted_loss"]
    print(f"wrote {out}")
    print(
        f"recommended for {settings['target_hours']:g} B200-hours: hidden_size={arch.hidden_size} "
        f"num_hidden_layers={arch.num_hidden_layers} head_dim={arch.head_dim} "
        f"intermediate_size={arch.intermediate_size} "
        f"batch={result.training_config.train_batch_size} "
        f"tokens={result.training_config.total_train_tokens:.3g}; predicted val loss "
        f"{pred['median']:.3f} (90% {pred['ci90'][0]:.3f}-{pred['ci90'][1]:.3f}); "
        f"spent {seconds_used:.0f} of {settings['budget']:g} s"
    )
    return 0

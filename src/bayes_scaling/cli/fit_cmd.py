"""`bayes-scaling fit RUNS`: fit the law to a runs file and write the report.

Reads API rows, a ``/previous_runs`` dump or generic rows (see :mod:`bayes_scaling.runs_io`),
fits the posterior by NUTS, recommends the configuration for the target and writes report.json,
report.md, runs.csv, posterior.nc and the figures into the output folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import jax

from bayes_scaling.cli import checks

__all__ = ["FIT_SAMPLER", "register"]

#: The sampler of `fit` (``NutsConfig`` fields; one fit, so ``exact_capacity``: no padding for
#: refits to reuse; 2,479 rows padded to 4,096 put 65% more rows in every gradient). 4 chains of 700
#: warmup and 2000 draws, trees up to depth 10. On the 99 real 2025 API rows the slowest sites
#: are p_lr, b_lr and gamma (the learning-rate response: runs below lr* pin down only their
#: products, and p_lr's upper tail runs into its prior's truncation at 2). The former 4 x (1000 +
#: 1000) at depth 8 gave bulk ESS 620-840, r-hat 1.006-1.010 at seeds 0 and 1; 4 x (700 + 2000)
#: at depth 8 left one chain of four lingering in that tail at seed 0 (r-hat 1.013, ESS 421);
#: depth 10 (the rare long trajectories, 2% of draws, are the ones that travel along it) gave
#: r-hat 1.004 and 1.002, ESS 897 and 710 at seeds 0 and 1, the whole command 73 CPU s on an
#: earlier, faster machine. On the 2-core machine of 2026-12-03, with the frontier gap in log
#: space, the unused generic branch left out and NumPy's Student-t noise for the predictive
#: draws: the command 2 min 16 s with a warm compilation cache (a cold one adds ~40 s), the fit
#: 93 s (4 chains on 2 cores at ~95 leapfrog steps per draw), r-hat 1.004, bulk ESS 1207;
#: before these changes 3 min 10 s to 3 min 20 s, the fit 134 s. On the 2,479 rows of the
#: 2024 API (``--source ZitongYang``): the command 9 min 26 s (the fit 515 s; 16.9 min before),
#: r-hat 1.005, bulk ESS 1180. The gradient over 2,479 rows, not the draws, is the cost there.
#: The same code on the 2-core machine of 2026-12-04 (this machine's speed varies about 2x
#: between days): the 99 rows 56 s with an empty compilation cache, 44-47 s with a warm one
#: (the fit 27-36 s), r-hat 1.003, bulk ESS 884; the 2,479 rows 3 min 36 s (the fit 191 s),
#: r-hat 1.009, bulk ESS 910.
FIT_SAMPLER = {"num_warmup": 700, "num_samples": 2000, "num_chains": 4, "max_tree_depth": 10,
               "init": "prior_median", "exact_capacity": True}


def register(subparsers) -> None:
    """Add the `fit` subcommand."""
    parser = subparsers.add_parser(
        "fit",
        help="fit the scaling law to a runs file (CSV or JSON) and write the report",
        description=(
            "Fit the Bayesian scaling law to RUNS: API-style rows (d_model, num_layers, "
            "num_heads, batch_size, learning_rate, train_flops, loss), a /previous_runs dump, or "
            "generic rows (n_params, n_tokens or flops, loss). Writes report.json, report.md, "
            "runs.csv, posterior.nc and figures."
        ),
    )
    parser.add_argument("runs", metavar="RUNS", help="CSV or JSON file of runs")
    parser.add_argument("--target", type=checks.positive_number, default=1e19,
                        help="compute of the run to plan, in FLOPs (default 1e19)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default runs/fit-<timestamp>)")
    checks.add_seed_and_nuts_flags(
        parser, what="the fit, the recommendation and the figures",
        num_warmup=FIT_SAMPLER["num_warmup"], num_samples=FIT_SAMPLER["num_samples"],
        num_chains=FIT_SAMPLER["num_chains"])
    parser.add_argument("--init", choices=("prior_median", "map"), default=FIT_SAMPLER["init"],
                        help="where the chains start: the prior median (default) or the "
                             "posterior mode found by BFGS (on the course API rows it did not "
                             "raise the ESS)")
    parser.add_argument("--source", default=None,
                        help="keep only rows whose source_repo column contains this text "
                             "(e.g. 'brandon' for the 2025 API rows of cs336_api_runs.csv)")
    parser.add_argument("--budget", type=checks.positive_number, default=None,
                        help="budget to report (default: the FLOPs the runs used)")
    parser.add_argument("--shape-rule", choices=("expected_loss", "n_opt_median"),
                        default="expected_loss",
                        help="how the recommended shape is chosen: lowest posterior-mean loss "
                             "among sizes in the N_opt 90%% interval (default), or the size "
                             "nearest the N_opt median at aspect ratio ~90")
    parser.add_argument("--lr-beyond-explored", action="store_true",
                        help="let the recommended learning rate leave the range the runs tried, "
                             "above the largest or below the smallest (default: capped at "
                             "both ends; the posterior's lr* beyond them is flagged)")
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars and no per-step log lines (bars are also off "
                        "when stderr is not a terminal)")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from bayes_scaling.progress import cli_progress, quiet_logging

    with quiet_logging(args.quiet), cli_progress(quiet=args.quiet) as progress:
        return _run(args, progress)


def _run(args: argparse.Namespace, progress) -> int:
    from bayes_scaling.inference import NutsConfig, Refitter
    from bayes_scaling.recommend import recommend
    from bayes_scaling.report import write_outputs
    from bayes_scaling.runs_io import check_identifiable, read_runs

    out = checks.output_dir(args.out or Path("runs") / time.strftime("fit-%Y%m%d-%H%M%S"))
    runs = check_identifiable(read_runs(args.runs, source=args.source))
    nuts = NutsConfig(**{**FIT_SAMPLER, "num_warmup": args.num_warmup,
                         "num_samples": args.num_samples, "num_chains": args.num_chains,
                         "init": args.init})
    print(f"fitting {runs.description}")
    for warning in runs.warnings:
        print(f"note: {warning}")
    key_fit, key_rec, key_fig = jax.random.split(jax.random.PRNGKey(args.seed), 3)
    refitter = Refitter(nuts=nuts, progress=progress, label="fit")
    posterior = refitter.fit(key_fit, runs.features(), runs.loss)
    posterior_seconds = round(refitter.last_fit_seconds, 1)
    lr_min, lr_max = _explored_learning_rates(runs, args)
    recommendation = recommend(key_rec, posterior, args.target, shape_rule=args.shape_rule,
                               generic=runs.kind == "generic",
                               learning_rate_min=lr_min, learning_rate_max=lr_max)
    flops_used = float(runs.flops.sum())
    report = write_outputs(
        out, runs=runs, posterior=posterior, recommendation=recommendation,
        target_flops=args.target,
        budget_flops=args.budget if args.budget is not None else flops_used,
        flops_used=flops_used, strategy="fit", rng_key=key_fig, figures=not args.no_figures,
        progress=progress,
        extra={"seed": args.seed, "nuts": dataclasses.asdict(nuts),
               "fit_seconds": posterior_seconds},
    )
    print(_summary(report))
    print(f"outputs in {out}/ ({', '.join(report['files'])})")
    return 0


def _explored_learning_rates(runs, args) -> tuple[float | None, float | None]:
    """The recommendation's learning-rate caps: the smallest and largest the API rows tried.

    ``(None, None)`` (no caps) with ``--lr-beyond-explored`` or without API rows.
    """
    import numpy as np

    features = runs.features()
    lr = features.learning_rate[np.asarray(features.is_config, bool)]
    lr = lr[np.isfinite(lr)]
    if args.lr_beyond_explored or lr.size == 0:
        return None, None
    return float(lr.min()), float(lr.max())


def _summary(report) -> str:
    rec = report["recommended"]
    loss = rec["predicted_loss"]
    n_opt, d_opt = report["n_opt"], report["d_opt"]
    generic = str(report.get("law_units", "")).startswith("source")
    n_unit = "params (the data's convention)" if generic else "non-embedding params"
    shape = ("" if "d_model" not in rec else
             f"d_model={rec['d_model']} num_layers={rec['num_layers']} "
             f"num_heads={rec['num_heads']} batch_size={rec['batch_size']} "
             f"learning_rate={rec['learning_rate']:.3g} ")
    lines = [
        f"target {report['target_flops']:.3g} FLOPs: train {shape}"
        f"on {rec['tokens']:.3g} tokens ({rec['non_embedding_params']:.3g} {n_unit})",
        f"predicted loss {loss['median']:.3f} (90% {loss['ci90'][0]:.3f}-{loss['ci90'][1]:.3f});"
        f" N_opt {n_opt['median']:.3g} (90% {n_opt['ci90'][0]:.3g}-{n_opt['ci90'][1]:.3g})"
        f" {n_unit}; D_opt {d_opt['median']:.3g} tokens"
        f" (90% {d_opt['ci90'][0]:.3g}-{d_opt['ci90'][1]:.3g})",
    ]
    for flag in rec.get("outside_explored", []):
        lines.append(f"FLAG: {flag['name']}={flag['value']:.3g} is {flag['factor']:.2g}x "
                     f"{flag['side']} the explored range {flag['explored'][0]:.3g}-"
                     f"{flag['explored'][1]:.3g}")
    diag = report["diagnostics"]
    bad = report.get("diagnostic_warnings", [])
    if bad:
        lines.append("WARNING: MCMC diagnostics are poor "
                     f"(r_hat_max={_num(diag['r_hat_max'], '.3f')}"
                     f", ess_bulk_min={_num(diag['ess_bulk_min'], '.0f')}, "
                     f"divergences={diag['divergences']}):")
        lines += [f"  - {w}" for w in bad]
    return "\n".join(lines)


def _num(value, fmt: str) -> str:
    return "n/a" if value is None else format(float(value), fmt)

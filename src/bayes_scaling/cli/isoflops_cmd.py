"""`bayes-scaling isoflops FILE`: the classic IsoFLOPs analysis with power-law fits and plots."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax

from bayes_scaling.cli import checks
from bayes_scaling.errors import DataFormatError

__all__ = ["register"]


def register(subparsers) -> None:
    """Add the `isoflops` subcommand."""
    parser = subparsers.add_parser(
        "isoflops",
        help="IsoFLOPs analysis of a [{parameters, compute_budget, final_loss}] JSON file",
        description=(
            "Per-budget optima of isoFLOP profiles, power-law fits N_opt = a C^b and "
            "D_opt = C / (6 N_opt) (least squares and Bayesian), predictions and plots."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="JSON list of isoFLOP runs")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default runs/isoflops-<timestamp>)")
    parser.add_argument("--method", choices=("minimum", "vertex"), default="minimum",
                        help="per-budget optimum: lowest-loss run (default) or quadratic vertex")
    parser.add_argument("--predict-at", type=checks.positive_number, nargs="+",
                        default=[1e23, 1e24],
                        metavar="FLOPS", help="budgets to predict at (default 1e23 1e24)")
    checks.add_seed_and_nuts_flags(parser, what="the Bayesian fit", num_warmup=500,
                                   num_samples=1000, num_chains=2)
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from bayes_scaling.isoflops import analyze_isoflops, read_isoflops, write_isoflops_outputs

    path = Path(args.file)
    if path.is_dir():
        raise DataFormatError(f"{path}: expected an isoFLOPs JSON file, got a directory")
    out = checks.output_dir(args.out or Path("runs") / time.strftime("isoflops-%Y%m%d-%H%M%S"))
    try:
        data = read_isoflops(path)
    except DataFormatError:
        raise
    except (ValueError, OverflowError, RecursionError) as exc:  # e.g. a 5000-digit integer
        raise DataFormatError(f"{path}: row 1: not usable JSON ({exc})") from None
    result = analyze_isoflops(
        jax.random.PRNGKey(args.seed), data, method=args.method, predict_at=args.predict_at,
        num_warmup=args.num_warmup, num_samples=args.num_samples, num_chains=args.num_chains,
    )
    files = write_isoflops_outputs(out, result)
    summary = result.to_dict()
    print(f"N_opt = {result.n_fit.a:.4g} * C^{result.n_fit.b:.4f};  "
          f"D_opt = {result.d_fit.a:.4g} * C^{result.d_fit.b:.4f}  ({result.method} per budget)")
    for p in summary["predictions"].values():
        bn = p["bayes_n_opt"]
        print(f"C = {p['compute_budget']:.0e}: N_opt {p['n_opt']:.4g} (Bayesian 90% "
              f"{bn['ci90'][0]:.3g}-{bn['ci90'][1]:.3g}), D_opt {p['d_opt']:.4g}")
    print(f"outputs in {out}/ ({', '.join(files)})")
    return 0

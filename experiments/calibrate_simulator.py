"""Calibrate the simulator's default truth against the real CS336 training-API responses.

Reads ``cs336_api_runs.csv`` (``../shared/data`` by default), measures how far the default truth's
mean loss (DESIGN.md section 3) is from the real logged losses, separately for the 2025 API
(source brandon-snider) and the 2024 API (the other sources), then refits a handful of the
truth's constants (within the same formula) to the 2024 rows at >= 1e15 FLOPs and reports the
refit on every subset, with honest held-out checks: k-fold cross-validation within the 2024 rows
and the 2025 rows, which the fit never sees. The default truth is not changed; the proposal goes
into the note.

Usage::

    python experiments/calibrate_simulator.py [--data DIR_OR_CSV] [--out FILE]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import least_squares

from bayes_scaling.files import atomic_write_text
from bayes_scaling.simulator.truth import Truth, mean_loss

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "simulator_calibration.md"
CSV_NAME = "cs336_api_runs.csv"
EDITION_2025_SOURCE = "brandon-snider"
MIN_FLOPS = 1e15
#: Candidate sets of refitted constants, each ``{name: fitted in log space}``; the rest stay fixed.
#: "level" moves the law's asymptote and data term; "optimisation" keeps the law (E, A, B, alpha,
#: beta) and moves only the step, learning-rate and aspect-ratio nuisance terms.
FIT_SETS = {
    "level": {"delta_data": False, "A": True, "B": True, "K": True, "eta0": True, "chi": True},
    "optimisation": {"K": True, "gamma": True, "p": True, "eta0": True, "chi": True,
                     "c_wide": True},
}
N_FOLDS = 5
#: The largest-compute 2025 rows, near-optimal shapes at lr 1e-3: the regime that matters most.
FRONTIER_FLOPS = 6e16
FRONTIER_LABEL = "2025, >= 6e16 FLOPs (near the frontier)"


@dataclasses.dataclass(frozen=True)
class Runs:
    """The API log: each row's edition and loss, then its configuration as float arrays."""

    edition: np.ndarray  # "2024" or "2025"
    loss: np.ndarray
    d_model: np.ndarray
    num_layers: np.ndarray
    num_heads: np.ndarray
    batch_size: np.ndarray
    learning_rate: np.ndarray
    train_flops: np.ndarray

    def config_columns(self) -> tuple[np.ndarray, ...]:
        """``d_model, num_layers, num_heads, batch_size, learning_rate, train_flops``."""
        return (self.d_model, self.num_layers, self.num_heads, self.batch_size,
                self.learning_rate, self.train_flops)

    def subset(self, mask: np.ndarray) -> Runs:
        """Return the rows where ``mask`` is true."""
        return Runs(**{f.name: getattr(self, f.name)[mask] for f in dataclasses.fields(self)})

    def __len__(self) -> int:
        return len(self.loss)


def load_runs(path: Path) -> Runs:
    """Read the API log CSV (``path`` may be the data folder or the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / CSV_NAME
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise SystemExit(f"{path}: no rows")

    def column(name):
        return np.array([float(row[name]) for row in rows])

    edition = np.array(
        ["2025" if row["source_repo"].startswith(EDITION_2025_SOURCE + "/") else "2024"
         for row in rows]
    )
    return Runs(
        d_model=column("d_model"),
        num_layers=column("num_layers"),
        num_heads=column("num_heads"),
        batch_size=column("batch_size"),
        learning_rate=column("learning_rate"),
        train_flops=column("train_flops"),
        loss=column("loss"),
        edition=edition,
    )


@jax.jit
def _predict_jit(constants: dict, columns):
    return mean_loss(Truth(**constants), *columns)


def predict(truth: Truth, runs: Runs) -> np.ndarray:
    """Compute the truth's mean loss of every row (one compiled function for all truths)."""
    size = -(-len(runs) // 128) * 128  # padded, so that few shapes are compiled
    pad = np.minimum(np.arange(size), len(runs) - 1)
    columns = tuple(jnp.asarray(c[pad]) for c in runs.config_columns())
    constants = {k: float(v) for k, v in truth.to_dict().items() if k != "seed"}
    return np.asarray(_predict_jit(constants, columns))[: len(runs)]


def error_summary(truth: Truth, runs: Runs) -> dict[str, float]:
    """RMSE and bias (mean of predicted minus real) of the truth's mean loss, and n."""
    if len(runs) == 0:
        return {"n": 0, "rmse": math.nan, "bias": math.nan}
    residual = predict(truth, runs) - runs.loss
    return {
        "n": int(len(runs)),
        "rmse": float(np.sqrt(np.mean(residual**2))),
        "bias": float(np.mean(residual)),
    }


def _to_vector(truth: Truth, keys: dict[str, bool]) -> np.ndarray:
    return np.array([math.log(getattr(truth, k)) if log else getattr(truth, k)
                     for k, log in keys.items()])


def _from_vector(base: Truth, keys: dict[str, bool], vector) -> Truth:
    pairs = zip(keys.items(), vector, strict=True)
    values = {k: (jnp.exp(v) if log else v) for (k, log), v in pairs}
    return dataclasses.replace(base, **values)


def _as_float_truth(truth: Truth) -> Truth:
    return dataclasses.replace(
        truth, **{f.name: float(getattr(truth, f.name)) for f in dataclasses.fields(truth)
                  if f.name != "seed"}
    )


@functools.partial(jax.jit, static_argnums=(0, 1))
def _residual(start: Truth, keys: tuple[tuple[str, bool], ...], x, columns, loss, weight):
    return weight * (mean_loss(_from_vector(start, dict(keys), x), *columns) - loss)


_jacobian = jax.jit(jax.jacfwd(_residual.__wrapped__, argnums=2), static_argnums=(0, 1))


def fit_truth(runs: Runs, start: Truth, keys: dict[str, bool]) -> Truth:
    """Least-squares refit of ``keys`` (others fixed at ``start``) to the runs' mean losses.

    Log-space constants may move by at most a factor of 20 from ``start``; additive ones
    (``delta_data``) within [-1.5, 1.5] (``E`` stays fixed, so ``E + delta_data`` moves).
    The residuals are jitted and the Jacobian is exact (``jax.jacfwd``).
    """
    x0 = _to_vector(start, keys)
    logs = list(keys.values())
    lower = np.array([v - math.log(20.0) if log else -1.5 for log, v in zip(logs, x0, strict=True)])
    upper = np.array([v + math.log(20.0) if log else 1.5 for log, v in zip(logs, x0, strict=True)])
    # Pad to a multiple of 128 rows with zero-weight copies so that fits of different subsets
    # (cross-validation folds, editions) share one compiled residual and Jacobian.
    size = -(-len(runs) // 128) * 128
    pad = np.zeros(size, dtype=int)
    pad[: len(runs)] = np.arange(len(runs))
    columns = tuple(jnp.asarray(c[pad]) for c in runs.config_columns())
    loss = jnp.asarray(runs.loss[pad])
    weight = jnp.asarray(np.arange(size) < len(runs), dtype=jnp.float64)
    static = tuple(keys.items())
    data = (columns, loss, weight)
    result = least_squares(
        lambda x: np.asarray(_residual(start, static, jnp.asarray(x), *data)),
        x0,
        jac=lambda x: np.asarray(_jacobian(start, static, jnp.asarray(x), *data)),
        bounds=(lower, upper),
    )
    return _as_float_truth(_from_vector(start, keys, result.x))


def cross_validate(
    runs: Runs, start: Truth, keys: dict[str, bool], folds: int = N_FOLDS
) -> dict[str, float]:
    """k-fold held-out RMSE/bias of the refit (folds assigned by row order, interleaved)."""
    index = np.arange(len(runs)) % folds
    residuals = []
    for fold in range(folds):
        fitted = fit_truth(runs.subset(index != fold), start, keys)
        held = runs.subset(index == fold)
        residuals.append(predict(fitted, held) - held.loss)
    residual = np.concatenate(residuals)
    return {"n": int(len(residual)), "rmse": float(np.sqrt(np.mean(residual**2))),
            "bias": float(np.mean(residual))}


def _row(label: str, summary: dict[str, float]) -> str:
    return f"| {label} | {summary['n']} | {summary['rmse']:.3f} | {summary['bias']:+.3f} |"


def _per_flops_table(truth: Truth, runs: Runs, min_flops: float = 0.0) -> list[str]:
    lines = ["| edition | train_flops | n | RMSE | bias |", "|---|---|---|---|---|"]
    for edition in ("2024", "2025"):
        for flops in np.unique(runs.train_flops[runs.train_flops >= min_flops]):
            sub = runs.subset((runs.edition == edition) & (runs.train_flops == flops))
            if len(sub):
                s = error_summary(truth, sub)
                lines.append(f"| {edition} | {flops:.0e} | {s['n']} | {s['rmse']:.3f} | "
                             f"{s['bias']:+.3f} |")
    return lines


def build_note(runs: Runs, data_path: Path, folds: int = N_FOLDS) -> str:
    """Run the whole calibration and return the markdown note."""
    from bayes_scaling.simulator.evaluation import true_optimum

    default = Truth()
    big = runs.train_flops >= MIN_FLOPS
    is_2025 = runs.edition == "2025"
    fit_label, held_label = "2024, >= 1e15 FLOPs (fit set)", "2025, >= 1e15 FLOPs (held out)"
    subsets = {
        fit_label: runs.subset(~is_2025 & big),
        held_label: runs.subset(is_2025 & big),
        "2024, all FLOPs": runs.subset(~is_2025),
        "2025, all FLOPs": runs.subset(is_2025),
        FRONTIER_LABEL: runs.subset(is_2025 & (runs.train_flops >= FRONTIER_FLOPS)),
    }
    fit_set = subsets[fit_label]
    fits = {}
    for name, keys in FIT_SETS.items():
        fits[name] = {
            "truth": fit_truth(fit_set, default, keys),
            "truth_2025": fit_truth(subsets[held_label], default, keys),
            "cv": cross_validate(fit_set, default, keys, folds),
        }
    best = min(fits, key=lambda n: error_summary(fits[n]["truth"], subsets[held_label])["rmse"])
    chosen = fits[best]["truth"]

    lines = [
        "# Simulator calibration against the real CS336 API logs",
        "",
        "Produced by `experiments/calibrate_simulator.py`; do not edit by hand (rerun the script).",
        f"Data: `{data_path.name}` ({len(runs)} rows; {int(np.sum(~is_2025))} from the 2024 API, "
        f"{int(np.sum(is_2025))} from the 2025 API, source `{EDITION_2025_SOURCE}`).",
        "",
        "Error of the truth's *mean* loss (DESIGN.md section 3, no noise) against the real logged "
        "losses. bias = mean(predicted - real): a negative bias means the truth predicts lower "
        "losses than the API returned. The real APIs were fitted regressors (plateaus, steps), "
        "so part of any residual is regressor structure, not a misfit of the formula.",
        "",
        "## Default truth",
        "",
        "| subset | n | RMSE | bias |",
        "|---|---|---|---|",
        *[_row(label, error_summary(default, sub)) for label, sub in subsets.items()],
        "",
        "### Per FLOP level (default truth)",
        "",
        *_per_flops_table(default, runs),
        "",
        "## Refits within the same formula",
        "",
        "Least squares (scipy `least_squares`, trust-region reflective, exact JAX Jacobian) of a "
        f"few constants to the 2024 rows at >= 1e15 FLOPs (n = {len(fit_set)}); every other "
        "constant keeps its default. Positive constants are fitted in log space within a factor "
        "of 20 of the default. Two candidate sets: `level` moves the law's asymptote and data "
        "term; `optimisation` keeps the law (E, A, B, alpha, beta) and moves only the step, "
        "learning-rate and aspect-ratio terms. Held-out checks: the 2025 rows (never seen by the "
        f"fit) and a {folds}-fold cross-validation within the fit set. The column 'refit on 2025' "
        "refits the same constants to the 2025 rows only to show how stable they are.",
    ]
    for name, keys in FIT_SETS.items():
        fit = fits[name]
        lines += ["", f"### Set `{name}`", "",
                  "| constant | default | refit on 2024 >= 1e15 | refit on 2025 >= 1e15 |",
                  "|---|---|---|---|"]
        for key in keys:
            lines.append(f"| {key} | {getattr(default, key):.4g} | "
                         f"{getattr(fit['truth'], key):.4g} | "
                         f"{getattr(fit['truth_2025'], key):.4g} |")
        lines += ["", "| subset | n | RMSE default | RMSE refit | bias default | bias refit |",
                  "|---|---|---|---|---|---|"]
        for label, sub in subsets.items():
            d, f = error_summary(default, sub), error_summary(fit["truth"], sub)
            lines.append(f"| {label} | {d['n']} | {d['rmse']:.3f} | {f['rmse']:.3f} | "
                         f"{d['bias']:+.3f} | {f['bias']:+.3f} |")
        d, cv = error_summary(default, fit_set), fit["cv"]
        lines.append(f"| {fit_label}, {folds}-fold cross-validated | {cv['n']} | "
                     f"{d['rmse']:.3f} | {cv['rmse']:.3f} | {d['bias']:+.3f} | "
                     f"{cv['bias']:+.3f} |")

    lines += ["", f"### Per FLOP level (refit `{best}`)", "",
              *_per_flops_table(chosen, runs, MIN_FLOPS), "",
              "## Compute-optimal loss implied by each truth", "",
              "| FLOPs | default | " + " | ".join(f"refit `{n}`" for n in fits) + " |",
              "|---|---|" + "---|" * len(fits)]
    for flops in (1e17, 1e18, 1e19):
        cells = [f"{true_optimum(fit['truth'], flops).loss:.3f}" for fit in fits.values()]
        lines.append(f"| {flops:.0e} | {true_optimum(default, flops).loss:.3f} | "
                     + " | ".join(cells) + " |")
    proposal = {k: round(float(getattr(chosen, k)), 6) for k in FIT_SETS[best]}
    frontier_default = error_summary(default, subsets[FRONTIER_LABEL])["rmse"]
    frontier_refit = error_summary(chosen, subsets[FRONTIER_LABEL])["rmse"]
    if frontier_refit > frontier_default:
        verdict = (
            f"It does worse than the default near the compute-optimal frontier (2025 rows at "
            f">= {FRONTIER_FLOPS:.0e} FLOPs: RMSE {frontier_refit:.3f} against "
            f"{frontier_default:.3f}), which is the regime the benchmarks score, so keeping the "
            "default and using the refit as an alternative, harder truth for robustness checks "
            "is the safer use of it."
        )
    else:
        verdict = (
            f"It also does at least as well as the default near the compute-optimal frontier "
            f"(2025 rows at >= {FRONTIER_FLOPS:.0e} FLOPs: RMSE {frontier_refit:.3f} against "
            f"{frontier_default:.3f})."
        )
    lines += [
        "",
        "## Proposal (not applied)",
        "",
        f"The default truth is unchanged. The set with the lower held-out (2025 >= 1e15) RMSE is "
        f"`{best}`; a truth file with its refit constants (`bayes-scaling run --truth FILE`):",
        "",
        "```json",
        json.dumps(proposal, indent=2),
        "```",
        "",
        verdict,
        "",
        "Caveats: the 2024 rows at >= 1e15 FLOPs are mostly corners of the API box (d_model 64 "
        "or 1024, 2 or 24 layers, learning rates 1e-4 or 1e-3), so a refit learns those corners; "
        "the 2025 rows and the cross-validated error show how much carries to other "
        "configurations. Both APIs were regressors, so neither is the loss of a real training "
        "run at that configuration.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"data folder holding {CSV_NAME}, or the CSV itself")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown note to write")
    parser.add_argument("--folds", type=int, default=N_FOLDS, help="cross-validation folds")
    args = parser.parse_args(argv)
    data_path = args.data / CSV_NAME if args.data.is_dir() else args.data
    if not data_path.is_file():
        print(f"calibrate_simulator: no data file at {data_path}", file=sys.stderr)
        return 2
    note = build_note(load_runs(data_path), data_path, folds=args.folds)
    atomic_write_text(args.out, note)
    print(note)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

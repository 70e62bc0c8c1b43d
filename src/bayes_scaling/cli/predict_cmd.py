"""`bayes-scaling predict RUN_DIR ROWS --out FILE`: the posterior predictive of each row.

The posterior is the one ``fit`` or ``run`` saved in RUN_DIR (see
:mod:`bayes_scaling.posterior_io`); ROWS is any runs file ``fit`` reads (API rows or generic
rows, CSV or JSON). Each row's predictive is the posterior predictive of an observed loss:
parameter uncertainty, the extrapolation discrepancy beyond the fitted runs (as in the report)
and the observation noise. ``law_median``, ``law_ci90_lo`` and ``law_ci90_hi`` are the model's
mean loss over the draws alone (parameter uncertainty; no discrepancy, no noise), as the
report's ``predicted_loss_law_only``. A loss column, if present, is not used for the
prediction; it only gives each row's error and whether the 50% and 90% intervals cover it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import numpy as np

__all__ = ["LAW_COLUMNS", "PREDICTION_COLUMNS", "predict_rows", "register"]

#: Columns added to each row of the output CSV (error and coverage only where a loss is given).
PREDICTION_COLUMNS = ("median", "ci50_lo", "ci50_hi", "ci90_lo", "ci90_hi")
#: The parameter uncertainty alone: median and 90% interval of the model mean over the draws.
LAW_COLUMNS = ("law_median", "law_ci90_lo", "law_ci90_hi")
CHECK_COLUMNS = ("error", "covered50", "covered90")


def register(subparsers) -> None:
    """Add the `predict` subcommand."""
    parser = subparsers.add_parser(
        "predict",
        help="posterior predictive loss of each row of a runs file, from a saved posterior",
        description=(
            "Predict the final loss of each row of ROWS (any runs file fit reads) from the "
            "posterior that fit or run saved in RUN_DIR: median, 50%% and 90%% intervals. A loss "
            "column is ignored for the prediction and only scored (error, coverage)."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path,
                        help="output folder of fit or run (posterior.nc, runs.csv, report.json)")
    parser.add_argument("rows", metavar="ROWS", help="CSV or JSON file of runs to predict")
    parser.add_argument("--out", type=Path, required=True, help="CSV file to write")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the noise draws")
    parser.add_argument("--source", default=None,
                        help="keep only rows whose source_repo column contains this text")
    parser.set_defaults(handler=_handle)


def predict_rows(rng_key, posterior, runs) -> dict[str, np.ndarray]:
    """Predictive summaries of each run, and its error and coverage where a loss is given.

    Parameters
    ----------
    rng_key : jax.Array
        Key of the noise draws.
    posterior : Posterior
    runs : RunsData
        The rows (``runs.loss`` NaN where no loss was given).

    Returns
    -------
    dict of str to numpy.ndarray
        Each of shape ``(M,)``: ``PREDICTION_COLUMNS``, ``LAW_COLUMNS``, ``error`` (median
        minus loss), ``covered50`` and ``covered90`` (NaN where the row has no loss).
    """
    features = runs.features()
    draws = posterior.sample_predictive(rng_key, features)
    q05, q25, q50, q75, q95 = np.quantile(draws, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    out = dict(zip(PREDICTION_COLUMNS, (q50, q25, q75, q05, q95), strict=True))
    mean = np.asarray(posterior.predict_mean(features), np.float64)
    out.update(zip(LAW_COLUMNS, np.quantile(mean, [0.5, 0.05, 0.95], axis=0), strict=True))
    loss = np.asarray(runs.loss, np.float64)
    given = np.isfinite(loss)
    out["error"] = np.where(given, q50 - loss, np.nan)
    out["covered50"] = np.where(given, (q25 <= loss) & (loss <= q75), np.nan)
    out["covered90"] = np.where(given, (q05 <= loss) & (loss <= q95), np.nan)
    return out


def _row_inputs(runs) -> tuple[list[str], list[list]]:
    if runs.kind == "api":
        header = ["d_model", "num_layers", "num_heads", "batch_size", "learning_rate",
                  "train_flops"]
        values = [[getattr(c, k) for k in header] for c in runs.configs]
    else:
        header = ["n_params", "n_tokens", "flops"]
        values = [list(v) for v in zip(runs.n_params, runs.n_tokens, runs.flops, strict=True)]
    return header, values


def _handle(args: argparse.Namespace) -> int:
    from bayes_scaling.errors import DataFormatError
    from bayes_scaling.files import atomic_write_text
    from bayes_scaling.posterior_io import load_posterior
    from bayes_scaling.runs_io import read_runs

    posterior = load_posterior(args.run_dir)
    runs = read_runs(args.rows, source=args.source, predict=True)
    if runs.kind == "api" and not posterior.nuisance:
        raise DataFormatError(f"{args.rows}: expected generic rows (n_params, n_tokens or "
                              f"flops) for the generic posterior in {args.run_dir}, got API rows")
    if runs.kind == "generic" and posterior.nuisance:
        raise DataFormatError(f"{args.rows}: expected API rows (d_model, num_layers, ...) for "
                              f"the API posterior in {args.run_dir}, got generic rows")
    result = predict_rows(jax.random.PRNGKey(args.seed), posterior, runs)
    header, values = _row_inputs(runs)
    given = np.isfinite(runs.loss)
    predicted = (*PREDICTION_COLUMNS, *LAW_COLUMNS)
    columns = list(predicted) + (["loss", *CHECK_COLUMNS] if given.any() else [])
    lines = [",".join(header + columns)]
    for i, row in enumerate(values):
        cells = [repr(float(v)) if isinstance(v, float) else str(v) for v in row]
        cells += [repr(float(result[c][i])) for c in predicted]
        if given.any():
            if given[i]:
                cells += [repr(float(runs.loss[i])), repr(float(result["error"][i])),
                          str(bool(result["covered50"][i])).lower(),
                          str(bool(result["covered90"][i])).lower()]
            else:
                cells += ["", "", "", ""]
        lines.append(",".join(cells))
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    summary = f"predicted {len(runs)} rows into {args.out}"
    n = int(given.sum())
    if n:
        c50 = int(np.nansum(result["covered50"]))
        c90 = int(np.nansum(result["covered90"]))
        mae = float(np.nanmean(np.abs(result["error"])))
        summary += (f"; {n} with a loss: 50% interval covers {c50}/{n}, 90% covers {c90}/{n}, "
                    f"mean |error| {mae:.3f}")
    print(summary)
    return 0

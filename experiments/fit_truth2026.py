"""Fit the 2026 truth's loss constants to its four anchors (how the defaults were chosen).

Least squares over K, gamma, B_data, beta, A, s_unigram and E (the other constants fixed at their
defaults) so that the default family gives: the spec's published run's first and final validation
losses (9.625, 7.189), 3.5 for a mid-size run (d 768, 12 layers, f 2048, batch 256, 2.5e9 tokens
at the optimal learning rate) and 3.0 for the compute-optimal 48-B200-hour run of
``truth2026_anchors.compute_optimal``, with weak pulls of beta to 0.3 and gamma to 0.35.
E is bounded to [1.7, 2.4]. Prints the fitted constants as JSON (a truth file) and writes them.

Usage::

    python experiments/fit_truth2026.py [--coarse] [--max-nfev N] [--out FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from bayes_scaling.api2026.schemas import TrainingConfig
from bayes_scaling.files import atomic_write_text
from bayes_scaling.simulator.truth2026 import Truth2026, mean_curve

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "truth2026_fit.json"
NAMES = ("K", "gamma", "B_data", "beta", "A", "s_unigram", "E")
LOWER = (0.5, 0.05, 1.0, 0.05, 50.0, 0.05, 1.7)
UPPER = (50.0, 1.0, 5000.0, 0.7, 5000.0, 10.0, 2.4)

_spec = importlib.util.spec_from_file_location("truth2026_anchors", HERE / "truth2026_anchors.py")
anchors = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(anchors)


def residuals(x, coarse):
    """Anchor misfits of the truth with constants ``x`` (in NAMES order)."""
    truth = replace(Truth2026(), **dict(zip(NAMES, map(float, x), strict=True)))
    curve = mean_curve(truth, TrainingConfig.model_validate(anchors.NOTEBOOK))
    mid = anchors.at_optimal_lr(truth, 768, 12, 256, 512 * 256 * 16 * 1192, head_dim=64)
    best, _ = anchors.compute_optimal(truth, 48 * 3600, coarse)
    return np.array([
        curve[0] - 9.625, curve[-1] - 7.189, mean_curve(truth, mid)[-1] - 3.5, best - 3.0,
        0.1 * (truth.beta - 0.3), 0.1 * (truth.gamma - 0.35),
    ])


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Fit from the current defaults; write and return the fitted constants."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coarse", action="store_true", help="tiny 48-h grid (smoke test)")
    parser.add_argument("--max-nfev", type=int, default=None, help="cap on evaluations")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    x0 = [getattr(Truth2026(), name) for name in NAMES]
    fit = least_squares(residuals, x0, bounds=(LOWER, UPPER), diff_step=1e-3,
                        max_nfev=args.max_nfev, args=(args.coarse,))
    fitted = {name: float(v) for name, v in zip(NAMES, fit.x, strict=True)}
    record = {"fitted": fitted, "residuals": [float(r) for r in fit.fun]}
    atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    sys.stdout.write(json.dumps(main(), indent=2) + "\n")

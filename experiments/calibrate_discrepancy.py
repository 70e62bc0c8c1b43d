"""Calibrate the extrapolation discrepancy's scale on held-out larger runs of real data sets.

The discrepancy ``ln L_pred = ln mu + tau sqrt(u) z`` (:mod:`bayes_scaling.model`) is zero
inside the fitted data, so no fit can learn ``tau``; held-out larger runs can. This script takes
the splits of ``experiments/extrapolation_check.py`` (same loaders, same cached fits: Chinchilla,
Li et al. 2025, Gadre et al. 2024 x 3, Porian et al. 2024 x 2, the 2025 course API rows), and
for each candidate median ``tau_median`` (``tau ~ LogNormal(ln tau_median, tau_log_sd)``,
``tau_log_sd`` kept at the package's value) computes whether each held-out row's 90% posterior
predictive interval covers it.

Rule: ``tau_median`` is the smallest value of the grid whose 90% intervals cover at least 90% of
the held-out rows pooled over the training data sets. It is checked by leave-one-dataset-out
(five data sets: chinchilla, li, gadre, porian, cs336): each data set's coverage under the
``tau_median`` chosen without it. The package default (``PriorConfig.tau_median``) is the value
chosen from all data sets, written to ``experiments/results/discrepancy_calibration.json``
(``tests/test_data.py`` checks that the default is that value).

    nice -n 10 python experiments/calibrate_discrepancy.py
    python experiments/calibrate_discrepancy.py --tiny --splits gadre-c4,porian-cosine
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from bayes_scaling.files import atomic_write_lines, atomic_write_text
from bayes_scaling.model import PriorConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
#: Candidate medians: 0 (no discrepancy) and 0.002-0.3 on a log grid (about 6% steps).
GRID = np.concatenate([[0.0], np.geomspace(0.002, 0.3, 89)])
TARGET = 0.90


def _extrapolation_check():
    spec = importlib.util.spec_from_file_location(
        "extrapolation_check", Path(__file__).with_name("extrapolation_check.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def choose(coverage: np.ndarray, counts: np.ndarray) -> int:
    """Index of the smallest grid value with pooled coverage >= TARGET (else the largest).

    ``coverage`` is ``(G, K)`` hits per grid value and data set, ``counts`` ``(K,)`` rows.
    """
    pooled = coverage.sum(axis=1) / max(int(counts.sum()), 1)
    ok = np.flatnonzero(pooled >= TARGET)
    return int(ok[0]) if ok.size else len(pooled) - 1


def calibrate(hits: dict[str, np.ndarray], rows: dict[str, int]) -> dict:
    """The rule and its leave-one-dataset-out check from per-data-set hits ``(G,)``."""
    names = sorted(hits)
    coverage = np.stack([hits[k] for k in names], axis=1)
    counts = np.array([rows[k] for k in names])
    folds = []
    for j, name in enumerate(names):
        keep = np.arange(len(names)) != j
        i = choose(coverage[:, keep], counts[keep])
        folds.append({"held_out": name, "tau_median": float(GRID[i]),
                      "covered": int(coverage[i, j]), "rows": int(counts[j])})
    i = choose(coverage, counts)
    return {
        "tau_median": float(f"{GRID[i]:.2g}"),
        "tau_median_grid": float(GRID[i]),
        "pooled_coverage": float(coverage[i].sum() / counts.sum()),
        "per_dataset": {k: {"covered": int(coverage[i, j]), "rows": int(counts[j]),
                            "own_tau_median": float(GRID[choose(coverage[:, [j]],
                                                                counts[[j]])])}
                        for j, k in enumerate(names)},
        "lodo": folds,
        "lodo_pooled_coverage": float(sum(f["covered"] for f in folds)
                                      / sum(f["rows"] for f in folds)),
    }


def main(argv=None) -> str:
    ec = _extrapolation_check()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--splits", default=",".join(ec.LOADERS))
    parser.add_argument("--tiny", action="store_true", help="tiny settings (smoke test)")
    parser.add_argument("--cache", type=Path, default=ec.CACHE)
    parser.add_argument("--out", type=Path, default=RESULTS / "discrepancy_calibration.md")
    args = parser.parse_args(argv)
    settings = ec.TINY if args.tiny else ec.FULL
    splits = ec.load_splits(args.data, args.splits.split(","))
    posteriors = ec.fit_all(splits, settings, args.cache)
    base = PriorConfig()
    hits: dict[str, np.ndarray] = {}
    rows: dict[str, int] = {}
    per_split: dict[str, list] = {}
    for split in splits:
        covered = []
        for tau in GRID:
            prior = replace(base, tau_median=float(tau))
            covered.append(np.asarray(ec.bayes_rows(split, posteriors[split.name], prior)
                                      ["covered"], bool))
        covered = np.array(covered)  # (G, M)
        per_split[split.name] = covered.sum(axis=1).tolist()
        hits[split.dataset] = hits.get(split.dataset, 0) + covered.sum(axis=1)
        rows[split.dataset] = rows.get(split.dataset, 0) + covered.shape[1]
    result = calibrate(hits, rows)
    i = int(np.argmin(np.abs(GRID - result["tau_median_grid"])))
    result.update(
        tau_log_sd=base.tau_log_sd, target=TARGET, grid=GRID.tolist(),
        per_split={s.name: {"covered": per_split[s.name][i], "rows": len(s.held[4]),
                            "no_discrepancy": per_split[s.name][0]} for s in splits},
        nuts={k: settings[k] for k in ("warmup", "samples", "chains")},
        source="experiments/calibrate_discrepancy.py",
    )
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(result, indent=1) + "\n")
    lines = [
        "# Extrapolation discrepancy: calibrated scale",
        "",
        f"Produced by `experiments/calibrate_discrepancy.py` from the held-out splits of "
        f"`experiments/extrapolation_check.py` (NUTS {settings['chains']} chains x "
        f"{settings['samples']} draws, {settings['warmup']} warmup). Rule: the smallest "
        f"`tau_median` (grid 0, 0.002-0.3) whose 90% predictive intervals cover >= 90% of the "
        f"held-out rows pooled over the data sets; `tau_log_sd = {base.tau_log_sd:g}` kept.",
        "",
        f"**Chosen from all data sets: `tau_median = {result['tau_median']:g}`** "
        f"(grid value {result['tau_median_grid']:.4g}; pooled coverage "
        f"{result['pooled_coverage']:.1%}).",
        "",
        "| split | held-out rows | covered, no discrepancy | covered at the chosen tau |",
        "|---|---|---|---|",
    ]
    for name, item in result["per_split"].items():
        lines.append(f"| {name} | {item['rows']} | {item['no_discrepancy']} | "
                     f"{item['covered']} |")
    lines += [
        "",
        "Per data set: the `tau_median` its own held-out rows alone would need (the same rule), "
        "and its coverage at the chosen value.",
        "",
        "| data set | held-out rows | own tau_median | covered at the chosen tau |",
        "|---|---|---|---|",
    ]
    for name, item in result["per_dataset"].items():
        lines.append(f"| {name} | {item['rows']} | {item['own_tau_median']:.4g} | "
                     f"{item['covered']}/{item['rows']} |")
    lines += [
        "",
        "Leave-one-dataset-out: `tau_median` chosen without the data set, then its coverage.",
        "",
        "| held-out data set | tau_median chosen without it | covered |",
        "|---|---|---|",
    ]
    for fold in result["lodo"]:
        lines.append(f"| {fold['held_out']} | {fold['tau_median']:.4g} | "
                     f"{fold['covered']}/{fold['rows']} ({fold['covered'] / fold['rows']:.0%}) |")
    lines += ["", f"Pooled leave-one-dataset-out coverage: "
                  f"{result['lodo_pooled_coverage']:.1%} (target 85-95%)."]
    table = atomic_write_lines(args.out, lines)
    print(table)
    return table


if __name__ == "__main__":
    main()

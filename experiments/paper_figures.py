"""Draw the paper's figures from the result files the other experiments wrote (no fitting here).

Reads ``experiments/results/benchmark_strategies.rows.jsonl`` (one JSON row per strategy run)
and the markdown tables of ``extrapolation_check.md`` and ``simulated_coverage.md``, and writes
PNGs into ``experiments/results/figures/``. A missing result file skips its figure (with a line
on stderr); ``paper/paper.md`` then says the figure is missing. Cheap: seconds, rerun freely.

Usage: ``python experiments/paper_figures.py [--results DIR] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import re
import runpy
import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from bayes_scaling.files import save_figure

ROOT = Path(__file__).resolve().parents[1]
#: One home for the table parser: make_paper.py, which reads the same result files.
markdown_tables = runpy.run_path(str(Path(__file__).with_name("make_paper.py")))["markdown_tables"]
STRATEGY_STYLE = {"active": ("tab:blue", "o"), "active:n-opt": ("tab:blue", "o"),
                  "active:decision": ("tab:purple", "D"), "isoflop-grid": ("tab:red", "s"),
                  "random": ("tab:green", "^")}
FIGURES = {
    "benchmark_regret.png": "benchmark_strategies.rows.jsonl",
    "benchmark_loss_intervals.png": "benchmark_strategies.rows.jsonl",
    "extrapolation_coverage.png": "extrapolation_check.md",
    "simulated_coverage.png": "simulated_coverage.md",
}


def read_rows(path: Path) -> list[dict]:
    """The JSON-lines rows of the strategy benchmark at its largest budget."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    top = max((float(r.get("budget", 0.0)) for r in rows), default=0.0)
    return [r for r in rows if float(r.get("budget", 0.0)) == top]


def plot_benchmark_regret(ax, rows: list[dict]):
    """Regret at the target per truth, one marker per strategy and seed (log scale)."""
    truths = list(dict.fromkeys(r["truth"] for r in rows))
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    floor = 1e-5
    for k, strategy in enumerate(strategies):
        color, marker = STRATEGY_STYLE.get(strategy, ("0.3", "x"))
        for i, truth in enumerate(truths):
            values = [max(r["regret"], floor) for r in rows
                      if r["truth"] == truth and r["strategy"] == strategy]
            x = i + (k - (len(strategies) - 1) / 2) * 0.22 + np.linspace(-0.04, 0.04,
                                                                          len(values))
            ax.scatter(x, values, color=color, marker=marker, s=30, edgecolor="black",
                       linewidth=0.4, label=strategy if i == 0 else None, zorder=3)
    ax.set_yscale("log")
    ax.set_xticks(range(len(truths)), truths, fontsize=8)
    ax.set_ylabel(f"regret at the target (nats; floored at {floor:g})")
    ax.set_title("Regret of the recommended configuration, per truth and seed "
                 "(largest budget)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return ax


def plot_benchmark_intervals(ax, rows: list[dict]):
    """Predicted loss (median, 90% interval) minus the true loss of each recommendation."""
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    y = 0
    ticks, labels = [], []
    for strategy in strategies:
        color, marker = STRATEGY_STYLE.get(strategy, ("0.3", "x"))
        sub = [r for r in rows if r["strategy"] == strategy]
        start = y
        for r in sub:
            lo, hi = (v - r["true_loss"] for v in r["predicted_ci90"])
            mid = r["predicted_median"] - r["true_loss"]
            ax.errorbar([mid], [y], xerr=[[mid - lo], [hi - mid]], fmt=marker, color=color,
                        markersize=4, capsize=2, linewidth=1)
            y += 1
        ticks.append((start + y - 1) / 2)
        labels.append(strategy)
        y += 2
    ax.axvline(0.0, color="black", linewidth=1, linestyle="--")
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set_xlabel("predicted loss − true loss of the recommended run (nats)")
    ax.set_title("Predicted loss at the target: median and 90% interval, every benchmark run",
                 fontsize=9)
    return ax


def _column(header: list[str], name: str) -> int:
    return next(i for i, cell in enumerate(header) if cell == name)


def plot_extrapolation_coverage(ax, text: str):
    """Coverage of held-out larger models, law only and with the discrepancy, per data set."""
    table = markdown_tables(text)[0]
    header, body = table[0], table[1:]
    data = [row[_column(header, "data")] for row in body]
    law = [float(row[_column(header, "coverage, law only")]) for row in body]
    disc = [float(row[_column(header, "coverage, with discrepancy")]) for row in body]
    x = np.arange(len(data))
    ax.bar(x - 0.2, law, width=0.4, color="0.6", label="law only")
    ax.bar(x + 0.2, disc, width=0.4, color="tab:blue", label="with extrapolation discrepancy")
    ax.axhline(0.9, color="black", linestyle="--", linewidth=1, label="nominal 90%")
    ax.set_xticks(x, [d.replace(" (", "\n(") for d in data], fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("held-out runs inside their 90% interval")
    ax.set_title("Extrapolation to larger held-out models (real data)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return ax


def plot_simulated_coverage(ax, text: str):
    """The N_opt(target) 90% intervals of the simulated-coverage seeds against the truth."""
    table = markdown_tables(text)[0]
    header, body = table[0], table[1:]
    true_n = float(body[0][_column(header, "true N_opt")])
    median_at = _column(header, "median")
    interval_at = _column(header, "90% interval")
    for i, row in enumerate(body):
        lo, hi = (float(v) for v in re.findall(r"[-+0-9.e]+", row[interval_at]))
        median = float(row[median_at])
        ax.errorbar([median], [i], xerr=[[median - lo], [hi - median]], fmt="o",
                    color="tab:blue", capsize=2)
    ax.axvline(true_n, color="tab:red", linestyle="--", linewidth=1, label="true N_opt")
    ax.set_xscale("log")
    ax.set_yticks(range(len(body)), [f"seed {row[0]}" for row in body], fontsize=7)
    ax.set_xlabel("N_opt at the target (non-embedding parameters)")
    ax.set_title("Simulated designs: posterior median and 90% interval of N_opt", fontsize=9)
    ax.legend(fontsize=7)
    return ax


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "experiments" / "results")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the PNGs go (default: <results>/figures)")
    args = parser.parse_args(argv)
    out = args.out or args.results / "figures"
    missing = 0
    for name, source in FIGURES.items():
        path = args.results / source
        if not path.is_file():
            print(f"missing result file {path}: {name} not drawn", file=sys.stderr)
            missing += 1
            continue
        fig = Figure(figsize=(7.5, 4.2))
        ax = fig.add_subplot()
        if name == "benchmark_regret.png":
            plot_benchmark_regret(ax, read_rows(path))
        elif name == "benchmark_loss_intervals.png":
            fig.set_size_inches(7.5, 6.0)
            plot_benchmark_intervals(ax, read_rows(path))
        elif name == "extrapolation_coverage.png":
            plot_extrapolation_coverage(ax, path.read_text())
        else:
            plot_simulated_coverage(ax, path.read_text())
        fig.tight_layout()
        save_figure(fig, out / name)
        print(f"wrote {out / name}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())

"""The figures of a report: which are drawn, their file names and captions, and drawing them.

:func:`write_figures` draws every figure of :data:`FIGURES` with :mod:`bayes_scaling.plots` and
saves it through :func:`bayes_scaling.files.save_figure` (atomic, mode 0644);
:mod:`bayes_scaling.report_markdown` links them with :data:`CAPTIONS`. The predictive draws
come from the caller's key (``--seed``); nothing here holds a fixed key.
"""

from __future__ import annotations

import logging
from pathlib import Path

import jax
from matplotlib.figure import Figure

from bayes_scaling import plots, plots_mcmc
from bayes_scaling.files import save_figure
from bayes_scaling.progress import NO_PROGRESS, Progress

__all__ = ["CAPTIONS", "FIGURES", "write_figures"]

logger = logging.getLogger(__name__)

FIGURES = {
    "isoflops": "isoflops_predictive.png",
    "n_opt": "n_opt.png",
    "d_opt": "d_opt.png",
    "loss": "loss_at_target.png",
    "pairs": "posterior_pairs.png",
    "ppc": "ppc.png",
    "trace": "trace.png",
    "rank": "rank.png",
    "loop": "loop_progress.png",
}
CAPTIONS = {
    "isoflops": "IsoFLOP curves: posterior predictive along a smooth shape family (API data: the "
                "posterior's preferred aspect ratio, optimal lr, batch 128); each run is drawn at "
                "its residual moved onto the curve (observed − predicted for its own config + "
                "curve at its N); every compute level is drawn, with its number of runs",
    "ppc": "Posterior predictive check: observed loss vs predictive median and 90% interval of "
           "every fitted run, coloured by compute",
    "n_opt": "N_opt(C) (non-embedding parameters) from the smallest run to twice the target: "
             "for API data the continuous optimum along the isoFLOP figure's shape family; the "
             "red point is the report's N_opt (the full shape search); crosses: lowest-loss "
             "run per compute (any lr, a crude guide)",
    "d_opt": "D_opt(C) = C / (6 N_opt), as in the N_opt figure",
    "loss": "Loss at the target: optimal loss and the recommended run's predictive (every draw "
            "binned; the share beyond the axes is stated)",
    "pairs": "Posterior of E, A, B, alpha, beta (the model's internal units)",
    "trace": "MCMC traces and per-chain densities (ArviZ; A and B as log10; at most 500 evenly "
             "spaced draws per chain): the chains should overlap and look like noise",
    "rank": "Rank plots (ArviZ; the trace figure's draws): near-uniform histograms in every "
            "chain mean the chains mix",
    "loop": "How the loop narrowed the answer: interval widths at the target after each fit "
            "(star: the final fit)",
}


def _allocation(out_dir, posterior, runs, target_flops, curve):
    for name, quantity in (("n_opt", "n_params"), ("d_opt", "n_tokens")):
        fig = Figure(figsize=(6.5, 4.5))
        plots.plot_optimal_allocation(fig.add_subplot(), posterior, quantity=quantity,
                                      data_flops=runs.flops, target_flops=target_flops,
                                      runs=runs, curve=curve)
        save_figure(fig, out_dir / FIGURES[name])


#: Draws per chain in the trace and rank figures. A fit's 2,000 per chain drew these two in
#: half the time of all its other figures together (5.1 s of a brandon fit's figures; 2.6 s at
#: 500); r-hat and ESS in the report use every draw.
MIXING_DRAWS = 500


def _mixing(out_dir, idata):
    names = plots_mcmc.mixing_names(idata)
    step = -(-idata.posterior.sizes["draw"] // MIXING_DRAWS)
    if step > 1:
        idata = idata.sel(draw=slice(None, None, step))
    fig = Figure(figsize=(8, 1.5 * len(names) + 0.5))
    plots_mcmc.plot_trace(fig.subplots(len(names), 2, squeeze=False), idata, names)
    fig.tight_layout()
    save_figure(fig, out_dir / FIGURES["trace"])
    columns = min(4, len(names))
    rows = -(-len(names) // columns)
    fig = Figure(figsize=(2.3 * columns, 2.1 * rows))
    plots_mcmc.plot_ranks(fig.subplots(rows, columns, squeeze=False), idata, names)
    fig.tight_layout()
    save_figure(fig, out_dir / FIGURES["rank"])


def write_figures(out_dir: Path, rng_key, runs, posterior, rec, target_flops,
                  report: dict, *, progress: Progress = NO_PROGRESS) -> dict[str, str]:
    """Draw and save every figure into ``out_dir``; returns ``{key: file name}``.

    Adds the in-sample predictive check's coverage to ``report`` (``report["ppc"]``). The loop
    progress figure is drawn when ``report["loop"]["history"]`` holds the loop's fits. One
    ``progress`` task counts the figures written.
    """
    history = (report.get("loop") or {}).get("history") or []
    keys = [k for k in FIGURES if k != "loop" or history]
    logger.info("writing %d figures", len(keys))
    task = progress.task("figures", total=len(keys), unit="fig")
    written = {}

    def done(*names):
        for name in names:
            written[name] = FIGURES[name]
            task.note(FIGURES[name])
            task.advance(1)

    try:
        key_iso, key_ppc = jax.random.split(rng_key)
        fig = Figure(figsize=(7, 5))
        plots.plot_isoflop_predictive(fig.add_subplot(), key_iso, posterior, runs)
        save_figure(fig, out_dir / FIGURES["isoflops"])
        done("isoflops")
        check = plots.predictive_check(key_ppc, posterior, runs)
        report["ppc"] = {"coverage90": check["coverage90"], "n_runs": len(runs)}
        fig = Figure(figsize=(6.5, 5))
        plots.plot_predictive_check(fig.add_subplot(), check, runs)
        save_figure(fig, out_dir / FIGURES["ppc"])
        done("ppc")
        grid = plots.allocation_flops_grid(runs.flops, target_flops)
        curve = (grid, plots.optimal_allocation_curve(posterior, runs, grid))
        _allocation(out_dir, posterior, runs, target_flops, curve)
        done("n_opt", "d_opt")
        fig = Figure(figsize=(6.5, 4.2))
        plots.plot_loss_at_target(fig.add_subplot(),
                                  loss_opt=posterior.optimum(target_flops).loss,
                                  predicted_loss=rec.predicted_loss, target_flops=target_flops)
        save_figure(fig, out_dir / FIGURES["loss"])
        done("loss")
        fig = Figure(figsize=(8, 8))
        axes = fig.subplots(5, 5)
        plots.plot_posterior_pairs(axes, posterior)
        fig.suptitle("Posterior of the law parameters (draws)", fontsize=10)
        fig.subplots_adjust(top=0.95)
        save_figure(fig, out_dir / FIGURES["pairs"])
        done("pairs")
        _mixing(out_dir, posterior.idata)
        done("trace", "rank")
        if history:
            fig = Figure(figsize=(9, 3.5))
            plots_mcmc.plot_loop_progress(fig.subplots(1, 2), history)
            fig.tight_layout()
            save_figure(fig, out_dir / FIGURES["loop"])
            done("loop")
    finally:
        task.close()
    return written

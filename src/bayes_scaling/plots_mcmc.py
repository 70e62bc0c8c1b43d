"""Figures of the sampler and of the loop: ArviZ trace and rank plots, the loop's progress.

Like :mod:`bayes_scaling.plots`, every function draws on the Axes it is given and returns them;
nothing here shows or saves a figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["MIXING_NAMES", "mixing_names", "plot_loop_progress", "plot_ranks", "plot_trace"]


#: Sites shown in the trace and rank plots, where the posterior has them (the law's
#: parameters, the noise, then the nuisance terms that mix slowest).
MIXING_NAMES = ("E", "A", "B", "alpha", "beta", "sigma", "lam", "omega", "l0", "a_lr")


def mixing_names(idata) -> list[str]:
    """The :data:`MIXING_NAMES` present in ``idata.posterior``, in that order."""
    return [name for name in MIXING_NAMES if name in idata.posterior]


def _mixing_dataset(idata, var_names: Sequence[str]):
    """The posterior's ``var_names``, with the heavy-tailed amplitudes A and B as log10."""
    data = idata.posterior[list(var_names)]
    for name in ("A", "B"):
        if name in data:
            data = data.assign({f"log10 {name}": np.log10(data[name])}).drop_vars(name)
    order = [f"log10 {n}" if n in ("A", "B") else n for n in var_names]
    return data[order]


def _small_labels(axes) -> None:
    for ax in np.ravel(axes):
        ax.tick_params(labelsize=6)
        ax.title.set_fontsize(8)
        ax.xaxis.label.set_fontsize(7)
        ax.yaxis.label.set_fontsize(7)


def plot_trace(axes, idata, var_names: Sequence[str]):
    """ArviZ trace plot (per-chain densities left, traces right) on ``axes``, shape ``(V, 2)``.

    A and B are drawn as log10. Divergent transitions are marked under the traces when
    ``idata`` has ``sample_stats``.
    """
    import arviz as az

    data = _mixing_dataset(idata, var_names)
    if "sample_stats" in idata.groups():
        data = az.InferenceData(posterior=data, sample_stats=idata.sample_stats)
    az.plot_trace(data, axes=axes, compact=True, show=False)
    _small_labels(axes)
    return axes


def plot_ranks(axes, idata, var_names: Sequence[str]):
    """ArviZ rank plots (one per variable) on ``axes``: flat histograms mean the chains mix."""
    import arviz as az

    flat = np.ravel(axes)
    az.plot_rank(_mixing_dataset(idata, var_names), ax=flat[: len(var_names)], show=False)
    for ax in flat[len(var_names):]:
        ax.set_axis_off()
    _small_labels(axes)
    return axes


def plot_loop_progress(axes, history: Sequence[dict]):
    """How the loop narrowed its answer: two Axes, against the FLOPs spent.

    Left the ln-width of the N_opt 90% interval, right the width of the optimal loss's 90%
    interval at the target, one point per fit (``LoopResult.history``); the final fit, which
    has the report's settings, is drawn as a star.
    """
    ax_n, ax_loss = axes
    flops = np.array([h["flops_used"] for h in history], np.float64)
    final = np.array([bool(h.get("final")) for h in history])
    for ax, key, color, label in (
        (ax_n, "n_opt_ci90_ln_width", "C0", "ln-width of N_opt 90% interval"),
        (ax_loss, "loss_ci90_width", "C1", "width of loss 90% interval"),
    ):
        values = np.array([h[key] for h in history], np.float64)
        ax.plot(flops[~final], values[~final], "o-", color=color, label="in-loop fits")
        if final.any():
            ax.scatter(flops[final], values[final], marker="*", s=90, color=color,
                       edgecolor="black", zorder=3, label="final fit")
        ax.set(xscale="log", xlabel="FLOPs spent", ylabel=label)
        ax.legend(fontsize=7)
    ax_n.set_title("N_opt at the target", fontsize=9)
    ax_loss.set_title("optimal loss at the target", fontsize=9)
    return axes

"""Calibrate the extrapolation discrepancy's prior on held-out larger runs of real data sets.

The discrepancy ``ln L_pred = ln mu + tau h(u) z`` (:mod:`bayes_scaling.model`; ``h`` =
:func:`~bayes_scaling.model.discrepancy_shape`, ``u`` the distance beyond the data) is zero
inside the fitted data, so no fit can learn ``tau``; held-out larger runs can. This script takes
the splits of ``experiments/extrapolation_check.py`` (same loaders, same cached fits: Chinchilla,
Li et al. 2025, Gadre et al. 2024 x 3, Porian et al. 2024 x 2, the 2025 course API rows) and
learns the prior ``tau ~ LogNormal(ln tau_median, tau_log_sd)`` that a fit of a *new* data set
should use.

Model (hierarchical, one scale per data set): each data set ``k`` has its own ``tau_k``, with
``ln tau_k ~ Normal(m, s)`` across data sets. Within a split the held-out residuals
``r_i = ln y_i - median_i`` (against the law-only predictive: parameter uncertainty and noise,
approximated as independent normals of scale ``v_i`` = the 90% interval's width / 3.29) are
``r ~ Normal(0, diag(v^2) + tau_k^2 g g^T)`` with ``g_i = h(u_i)``: one ``z`` per split, since
the law's error is systematic and shared by the runs of one fit (the package draws one ``z``
per posterior draw). The group-level ``(m, s)`` get a flat prior on ``m`` (over ``ln`` 1e-3 to
0.3) and ``s ~ HalfNormal(1)`` (the weakly informative group-scale prior of Gelman 2006 for few
groups); their posterior is computed on a grid, each data set's ``tau_k`` integrated out. The
prior for a new data set is the posterior predictive of its ``ln tau``, summarised as a normal:
``ln tau_median = E[m]``, ``tau_log_sd = sqrt(E[s^2] + Var[m])`` (so the spread between data
sets, and how little five data sets pin it down, widen the intervals of a new fit). Bayesian
hierarchical modelling of a scale across groups: Gelman et al., BDA3 ch. 5; model discrepancy
in calibration: Kennedy & O'Hagan (2001).

Check: leave-one-dataset-out (five data sets: chinchilla, li, gadre, porian, cs336): each data
set's 90% coverage under the prior learnt without it, with the package's own predictive
(:meth:`~bayes_scaling.posterior.Posterior.sample_predictive`). For comparison the table also
shows the rule used before (the smallest ``tau_median`` whose 90% intervals cover >= 90% of the
held-out rows pooled, ``tau_log_sd = 0.5``), checked the same way. The package default
(``PriorConfig.tau_median``, ``tau_log_sd``) is the hierarchical choice from all data sets,
written to ``experiments/results/discrepancy_calibration.json`` (``tests/test_data.py`` checks
that the default is that value).

    nice -n 10 python experiments/calibrate_discrepancy.py
    python experiments/calibrate_discrepancy.py --tiny --splits gadre-c4,porian-cosine
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import jax
import numpy as np
from scipy.special import logsumexp

from bayes_scaling.files import atomic_write_lines, atomic_write_text
from bayes_scaling.model import PriorConfig, discrepancy_shape
from bayes_scaling.summary import equal_tailed

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
#: Candidate medians of the previous rule: 0 (no discrepancy) and 0.002-0.3 on a log grid.
GRID = np.concatenate([[0.0], np.geomspace(0.002, 0.3, 89)])
TARGET = 0.90
PREVIOUS_LOG_SD = 0.5
#: Grids of the hierarchical model: each data set's ln tau, the group mean m and sd s.
LOG_TAU = np.linspace(np.log(1e-4), np.log(1.0), 361)
GROUP_MEAN = np.linspace(np.log(1e-3), np.log(0.3), 121)
GROUP_SD = np.linspace(0.02, 3.0, 150)
GROUP_SD_PRIOR_SCALE = 1.0
#: Shapes ``h(u)`` compared by the evidence: the package's and the random walk's used before.
SHAPES = {"u (the package's)": discrepancy_shape, "sqrt(u) (random walk)": np.sqrt}
#: Normal quantile of the 90% interval's half-width (its width is 2 x 1.645 sd).
Z90 = 1.6448536269514722


def _extrapolation_check():
    spec = importlib.util.spec_from_file_location(
        "extrapolation_check", Path(__file__).with_name("extrapolation_check.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def split_log_likelihood(residual, scale, shape) -> np.ndarray:
    """Log density of one split's residuals for each ``ln tau`` of :data:`LOG_TAU`, ``(T,)``.

    ``residual ~ Normal(0, diag(scale^2) + tau^2 shape shape^T)`` (matrix determinant lemma).
    """
    r, v, g = (np.asarray(a, np.float64) for a in (residual, scale, shape))
    d = np.maximum(v, 1e-6) ** 2
    t2 = np.exp(2.0 * LOG_TAU)
    ggd, grd, rrd = np.sum(g * g / d), np.sum(g * r / d), np.sum(r * r / d)
    det = 1.0 + t2 * ggd
    return -0.5 * (np.sum(np.log(2.0 * np.pi * d)) + np.log(det) + rrd - t2 * grd ** 2 / det)


def hierarchical_prior(loglik: dict[str, np.ndarray]) -> dict:
    """The predictive ``tau`` prior of a new data set from per-data-set likelihoods of ``ln tau``.

    Returns ``tau_median``, ``tau_log_sd``, the group posterior's means of ``m`` and ``s``, and
    ``log_evidence``: the log marginal likelihood of all the residuals (``m`` uniform on its
    grid, ``s`` half-normal), by which shapes of the discrepancy are compared.
    """
    lt = LOG_TAU[None, None, :]
    mean, sd = GROUP_MEAN[:, None, None], GROUP_SD[None, :, None]
    log_normal = -0.5 * ((lt - mean) / sd) ** 2 - np.log(sd * np.sqrt(2.0 * np.pi))
    step = np.log(LOG_TAU[1] - LOG_TAU[0])
    log_sd_prior = -0.5 * (GROUP_SD / GROUP_SD_PRIOR_SCALE) ** 2
    log_prior = (log_sd_prior - logsumexp(log_sd_prior))[None, :] - np.log(len(GROUP_MEAN))
    log_post = log_prior
    for values in loglik.values():
        log_post = log_post + logsumexp(values[None, None, :] + log_normal, axis=2) + step
    evidence = float(logsumexp(log_post))
    weight = np.exp(log_post - evidence)
    m_mean = float(np.sum(weight * GROUP_MEAN[:, None]))
    m_var = float(np.sum(weight * (GROUP_MEAN[:, None] - m_mean) ** 2))
    s2 = float(np.sum(weight * GROUP_SD[None, :] ** 2))
    return {"tau_median": float(np.exp(m_mean)), "tau_log_sd": float(np.sqrt(s2 + m_var)),
            "group_mean": m_mean, "group_sd": float(np.sum(weight * GROUP_SD[None, :])),
            "log_evidence": evidence}


def choose(coverage: np.ndarray, counts: np.ndarray) -> int:
    """The previous rule: index of the smallest grid value with pooled coverage >= TARGET.

    ``coverage`` is ``(G, K)`` hits per grid value and data set, ``counts`` ``(K,)`` rows.
    """
    pooled = coverage.sum(axis=1) / max(int(counts.sum()), 1)
    ok = np.flatnonzero(pooled >= TARGET)
    return int(ok[0]) if ok.size else len(pooled) - 1


def _law_only_residuals(ec, split, post, base: PriorConfig) -> dict:
    """Residuals, law-only scales and distances ``u`` of one split's held-out rows."""
    law_only = ec.with_discrepancy(post, replace(base, tau_median=0.0))
    features, *_, loss = split.held
    log_draws = np.log(law_only.sample_predictive(jax.random.key(1), features))
    lo, med, hi = equal_tailed(log_draws, axis=0)
    return {"residual": np.log(loss) - med, "scale": (hi - lo) / (2.0 * Z90),
            "u": post.extrapolation_distance(features)}


def _slope_through_origin(r: np.ndarray, u: np.ndarray) -> float:
    """Least-squares slope of ``r`` on ``u`` with no intercept: ``sum(r u) / sum(u^2)``."""
    return float(np.sum(r * u) / np.sum(u * u))


def _drift(part: dict) -> dict:
    """Signed residuals of one split (``ln y - median``; negative: the law predicted too high).

    The discrepancy is centred (``z ~ Normal(0, 1)``), so a drift shared by the data sets
    would show here as residuals of one sign growing with ``u``; ``drift_per_nat`` is the
    least-squares slope through the origin of the residuals on ``u``.
    """
    r, u = part["residual"], part["u"]
    return {"mean_residual": float(np.mean(r)), "below_zero": int(np.sum(r < 0)),
            "drift_per_nat": _slope_through_origin(r, u)}


def drift_lodo(parts: dict, dataset_of: dict) -> list[dict]:
    """What a drift learnt on the other data sets would do to each data set's residuals.

    Each data set's drift is the slope through the origin of all its held-out residuals on
    ``u``; the drift a new data set would get is the mean over the other data sets (each counts
    once, as in the hierarchical scale). Reports the median ``|ln y - median|`` of the data
    set's rows before and after subtracting ``drift * u``: an analysis, the package's
    discrepancy stays centred.
    """
    datasets = sorted(set(dataset_of.values()))
    pooled = {k: {"r": np.concatenate([p["residual"] for n, p in parts.items()
                                        if dataset_of[n] == k]),
                  "u": np.concatenate([p["u"] for n, p in parts.items() if dataset_of[n] == k])}
              for k in datasets}
    own = {k: _slope_through_origin(v["r"], v["u"]) for k, v in pooled.items()}
    out = []
    for k in datasets:
        drift = float(np.mean([own[j] for j in datasets if j != k]))
        r, u = pooled[k]["r"], pooled[k]["u"]
        out.append({"dataset": k, "own_drift": own[k], "drift_without_it": drift,
                    "median_abs_residual": float(np.median(np.abs(r))),
                    "median_abs_residual_corrected": float(np.median(np.abs(r - drift * u)))})
    return out


def _coverage(ec, splits, posteriors, prior: PriorConfig) -> dict[str, np.ndarray]:
    """Per split: whether each held-out row's 90% interval under ``prior`` covers it."""
    return {s.name: np.asarray(ec.bayes_rows(s, posteriors[s.name], prior)["covered"], bool)
            for s in splits}


def calibrate(ec, splits, posteriors, base: PriorConfig) -> dict:
    """The hierarchical choice, its leave-one-dataset-out check and the previous rule's."""
    datasets = sorted({s.dataset for s in splits})
    parts = {s.name: _law_only_residuals(ec, s, posteriors[s.name], base) for s in splits}
    evidence = {}
    for name, shape in SHAPES.items():
        loglik: dict[str, np.ndarray] = {}
        for split in splits:
            p = parts[split.name]
            loglik[split.dataset] = loglik.get(split.dataset, 0.0) + split_log_likelihood(
                p["residual"], p["scale"], shape(p["u"]))
        evidence[name] = hierarchical_prior(loglik)["log_evidence"]
        if shape is discrepancy_shape:
            chosen_loglik = loglik
    loglik = chosen_loglik
    rows = {k: sum(len(s.held[4]) for s in splits if s.dataset == k) for k in datasets}

    def hits_of(prior, dataset):
        covered = _coverage(ec, [s for s in splits if s.dataset == dataset], posteriors, prior)
        return int(sum(c.sum() for c in covered.values()))

    chosen = hierarchical_prior(loglik)
    prior = replace(base, tau_median=float(f"{chosen['tau_median']:.2g}"),
                    tau_log_sd=float(f"{chosen['tau_log_sd']:.2g}"))
    per_split = _coverage(ec, splits, posteriors, prior)
    folds = []
    for name in datasets:
        fold = hierarchical_prior({k: v for k, v in loglik.items() if k != name})
        fold_prior = replace(base, tau_median=fold["tau_median"], tau_log_sd=fold["tau_log_sd"])
        folds.append({"held_out": name, "tau_median": fold["tau_median"],
                      "tau_log_sd": fold["tau_log_sd"], "covered": hits_of(fold_prior, name),
                      "rows": rows[name]})
    # the previous rule, on the same rows
    grid_hits = np.array([[hits_of(replace(base, tau_median=float(t),
                                           tau_log_sd=PREVIOUS_LOG_SD), k) for k in datasets]
                          for t in GRID])
    counts = np.array([rows[k] for k in datasets])
    previous_folds = []
    for j, name in enumerate(datasets):
        keep = np.arange(len(datasets)) != j
        i = choose(grid_hits[:, keep], counts[keep])
        previous_folds.append({"held_out": name, "tau_median": float(GRID[i]),
                               "covered": int(grid_hits[i, j]), "rows": int(counts[j])})
    i = choose(grid_hits, counts)
    return {
        "tau_median": prior.tau_median,
        "tau_log_sd": prior.tau_log_sd,
        "group_mean_log_tau": chosen["group_mean"],
        "group_sd_log_tau": chosen["group_sd"],
        "log_evidence_by_shape": evidence,
        "pooled_coverage": float(sum(c.sum() for c in per_split.values()) / counts.sum()),
        "per_dataset": {k: {"covered": int(sum(per_split[s.name].sum() for s in splits
                                               if s.dataset == k)),
                            "rows": rows[k],
                            "own_tau_mle": float(np.exp(LOG_TAU[np.argmax(loglik[k])]))}
                        for k in datasets},
        "per_split": {s.name: {"covered": int(per_split[s.name].sum()),
                               "rows": len(s.held[4]), **_drift(parts[s.name])}
                      for s in splits},
        "drift_lodo": drift_lodo(parts, {s.name: s.dataset for s in splits}),
        "lodo": folds,
        "lodo_pooled_coverage": float(sum(f["covered"] for f in folds) / counts.sum()),
        "previous_rule": {
            "tau_median": float(GRID[i]), "tau_log_sd": PREVIOUS_LOG_SD,
            "pooled_coverage": float(grid_hits[i].sum() / counts.sum()),
            "lodo": previous_folds,
            "lodo_pooled_coverage": float(sum(f["covered"] for f in previous_folds)
                                          / counts.sum()),
        },
    }


def render(result: dict, settings: dict) -> list[str]:
    prev = result["previous_rule"]
    lines = [
        "# Extrapolation discrepancy: calibrated prior",
        "",
        f"Produced by `experiments/calibrate_discrepancy.py` from the held-out splits of "
        f"`experiments/extrapolation_check.py` (NUTS {settings['chains']} chains x "
        f"{settings['samples']} draws, {settings['warmup']} warmup). Hierarchical model: one "
        f"scale per data set, `ln tau_k ~ Normal(m, s)`, `s ~ HalfNormal(1)`; the prior of a new "
        f"data set is the posterior predictive of its `ln tau` (see the script's docstring).",
        "",
        f"**Chosen from all data sets: `tau_median = {result['tau_median']:g}`, "
        f"`tau_log_sd = {result['tau_log_sd']:g}`** (group posterior means: m = "
        f"{result['group_mean_log_tau']:.2f}, i.e. {np.exp(result['group_mean_log_tau']):.4f}, "
        f"s = {result['group_sd_log_tau']:.2f}); pooled 90% coverage of the held-out rows "
        f"{result['pooled_coverage']:.1%} (in-sample).",
        "",
        "Shape of the discrepancy's growth with the distance `u` beyond the data, log marginal "
        "likelihood of all held-out residuals under the hierarchical model: "
        + ", ".join(f"`{k}` {v:.1f}" for k, v in result["log_evidence_by_shape"].items()) + ".",
        "",
        "Per split, beside the coverage, the signed law-only residuals `ln y - median` of the "
        "held-out rows (negative: the law predicted a loss too high) and their slope on `u` "
        "through the origin: the discrepancy is centred, so a drift of one sign shared by the "
        "splits is what it does not model.",
        "",
        "| split | held-out rows | covered at the chosen prior | mean residual | residuals "
        "below 0 | drift per nat of u |",
        "|---|---|---|---|---|---|",
    ]
    for name, item in result["per_split"].items():
        lines.append(f"| {name} | {item['rows']} | {item['covered']} | "
                     f"{item['mean_residual']:+.4f} | {item['below_zero']}/{item['rows']} | "
                     f"{item['drift_per_nat']:+.4f} |")
    lines += [
        "",
        "What a drift would do (an analysis; the package's discrepancy stays centred): each "
        "data set's own drift (slope of its residuals on `u` through the origin), the mean "
        "drift of the other data sets, and the median `|ln y - median|` of its held-out rows "
        "before and after subtracting that drift times `u`.",
        "",
        "| data set | own drift per nat | drift learnt without it | median abs residual | "
        "corrected |",
        "|---|---|---|---|---|",
    ]
    for item in result["drift_lodo"]:
        lines.append(f"| {item['dataset']} | {item['own_drift']:+.4f} | "
                     f"{item['drift_without_it']:+.4f} | {item['median_abs_residual']:.4f} | "
                     f"{item['median_abs_residual_corrected']:.4f} |")
    lines += [
        "",
        "Per data set: the maximum-likelihood `tau` of its own held-out rows, and its coverage "
        "at the chosen prior.",
        "",
        "| data set | held-out rows | own tau (MLE) | covered at the chosen prior |",
        "|---|---|---|---|",
    ]
    for name, item in result["per_dataset"].items():
        lines.append(f"| {name} | {item['rows']} | {item['own_tau_mle']:.4g} | "
                     f"{item['covered']}/{item['rows']} |")
    lines += [
        "",
        "Leave-one-dataset-out: the prior learnt without the data set, then its coverage; "
        f"beside it the previous rule (smallest `tau_median` covering >= 90% pooled, "
        f"`tau_log_sd = {PREVIOUS_LOG_SD:g}`; from all data sets it picks "
        f"{prev['tau_median']:.4g}, pooled {prev['pooled_coverage']:.1%}).",
        "",
        "| held-out data set | tau_median, tau_log_sd without it | covered | previous rule: "
        "tau_median without it | covered |",
        "|---|---|---|---|---|",
    ]
    for fold, old in zip(result["lodo"], prev["lodo"], strict=True):
        lines.append(f"| {fold['held_out']} | {fold['tau_median']:.4g}, {fold['tau_log_sd']:.2f} "
                     f"| {fold['covered']}/{fold['rows']} ({fold['covered'] / fold['rows']:.0%})"
                     f" | {old['tau_median']:.4g} | {old['covered']}/{old['rows']} "
                     f"({old['covered'] / old['rows']:.0%}) |")
    lines += ["", f"Pooled leave-one-dataset-out coverage: hierarchical "
                  f"{result['lodo_pooled_coverage']:.1%}, previous rule "
                  f"{prev['lodo_pooled_coverage']:.1%} (target 85-95%)."]
    return lines


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
    result = calibrate(ec, splits, posteriors, PriorConfig())
    result.update(nuts={k: settings[k] for k in ("warmup", "samples", "chains")},
                  source="experiments/calibrate_discrepancy.py")
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(result, indent=1) + "\n")
    table = atomic_write_lines(args.out, render(result, settings))
    print(table)
    return table


if __name__ == "__main__":
    main()

"""Learn the exponent priors of ``alpha`` and ``beta`` across real data sets, leave-one-out.

A fit of small runs alone cannot tell a steep law with a high floor ``E`` from a shallow one
with a low floor: both describe the fitted range, and they part beyond it. On Porian et al.
2024 the fits of budgets <= 1.6e18 choose ``alpha ~ 0.57`` where all budgets give 0.41, and
predict the larger budgets' optimal loss 0.1 nats too high (``optimum_loss_diagnosis.md``).
What breaks the tie is what other data sets' exponents were. This script learns that from the
public sets in ``../shared/data`` (the splits of ``experiments/extrapolation_check.py``), as
``calibrate_discrepancy.py`` learns the discrepancy scale:

1. **Per split, a fit of all its rows** (fitted and held-out ones, the package's model under the
   vague default prior ``N(0.35, 0.15)``): the posterior mean and sd of ``alpha`` and ``beta``.
   A data set with several splits (Gadre's three training sets, Porian's two optimizer
   settings) averages them: one estimate ``y_k`` with standard error ``se_k`` per data set.
2. **Hierarchical normal model per exponent** (BDA3 sec. 5.4, the "eight schools" model):
   ``y_k ~ Normal(mu, s^2 + se_k^2)``, ``mu`` flat on [0, 1.2], ``s ~ HalfNormal(0.2)`` (weakly
   informative for few groups, Gelman 2006; published exponents span 0.2-0.6), on a grid. The
   prior of a new data set's exponent is the posterior predictive, summarised as a normal:
   mean ``E[mu]``, sd ``sqrt(E[s^2] + Var[mu])``.
3. **Leave one data set out**: the same prior learnt without data set ``k`` is the one its own
   held-out check uses (``extrapolation_check.py --exponent-prior lodo``), so no held-out row
   informs the prior it is scored under. The package default (``PriorConfig.alpha_mean`` ...)
   is the prior learnt from all data sets, written to
   ``experiments/results/exponent_calibration.json`` (``tests/test_data.py`` checks it).

    nice -n 10 python experiments/calibrate_exponents.py
    python experiments/calibrate_exponents.py --tiny --splits gadre-c4,porian-cosine
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import time
from dataclasses import asdict
from pathlib import Path

import jax
import numpy as np
from scipy.special import logsumexp

from bayes_scaling.features import RunFeatures
from bayes_scaling.files import atomic_write_lines, atomic_write_text
from bayes_scaling.inference import NutsConfig, Refitter
from bayes_scaling.model import PriorConfig
from bayes_scaling.runs_io import read_runs

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
CACHE = ROOT / "experiments" / "out" / "exponent_cache"
FULL = dict(warmup=1000, samples=1000, chains=4)
TINY = dict(warmup=20, samples=20, chains=1)
EXPONENTS = ("alpha", "beta")
#: Grids of the hierarchical model: the group mean ``mu`` and sd ``s``.
GROUP_MEAN = np.linspace(0.0, 1.2, 601)
GROUP_SD = np.linspace(0.0, 0.6, 301)
GROUP_SD_PRIOR_SCALE = 0.2


def _extrapolation_check():
    spec = importlib.util.spec_from_file_location(
        "extrapolation_check", Path(__file__).with_name("extrapolation_check.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def all_rows(split, data: Path) -> tuple[RunFeatures, np.ndarray]:
    """Every row of a split, fitted and held-out (the course API's as ``fit`` reads them)."""
    if split.dataset == "cs336":
        runs = read_runs(data / "cs336_api_runs.csv", source="brandon")
        return runs.features(), np.asarray(runs.loss, np.float64)
    features = RunFeatures.concat([split.fit[0], split.held[0]])
    return features, np.concatenate([split.fit[4], split.held[4]])


def fit_exponents(split, data: Path, settings: dict, cache: Path, refitter: Refitter) -> dict:
    """Posterior mean, sd and 90% interval of ``alpha`` and ``beta`` on all of a split's rows."""
    features, loss = all_rows(split, data)
    h = hashlib.sha256(np.ascontiguousarray(loss).tobytes())
    h.update(json.dumps([settings, asdict(refitter.prior)], sort_keys=True).encode())
    path = cache / f"{split.name}-{h.hexdigest()[:16]}.json"
    if not path.is_file():
        refitter.reset()
        key = jax.random.key(int(hashlib.sha256(split.name.encode()).hexdigest()[:6], 16))
        start = time.time()
        post = refitter.fit(key, features, loss)
        out = {"rows": int(loss.size), "r_hat": post.diagnostics.r_hat_max,
               "seconds": time.time() - start}
        for name in EXPONENTS:
            draws = np.asarray(post.draws[name], np.float64)
            out[name] = {"mean": float(draws.mean()), "sd": float(draws.std()),
                         "ci90": np.quantile(draws, [0.05, 0.95]).tolist()}
        cache.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(out))
    return json.loads(path.read_text())


def per_dataset(fits: dict, splits) -> dict[str, dict]:
    """One estimate per data set and exponent, from the mean of its splits' posteriors.

    The estimate is the mean of the splits' posterior means, with the root mean of their
    variances as its standard error (splits of one data set share the models, so they are not
    independent evidence).
    """
    out: dict[str, dict] = {}
    for dataset in dict.fromkeys(s.dataset for s in splits):
        names = [s.name for s in splits if s.dataset == dataset]
        out[dataset] = {e: {"y": float(np.mean([fits[n][e]["mean"] for n in names])),
                            "se": float(np.sqrt(np.mean([fits[n][e]["sd"] ** 2
                                                         for n in names])))}
                        for e in EXPONENTS}
        out[dataset]["splits"] = names
    return out


def hierarchical_normal(y, se) -> dict:
    """Predictive prior of a new group's exponent from group estimates ``y`` (sd ``se``)."""
    y, se = np.asarray(y, np.float64)[:, None, None], np.asarray(se, np.float64)[:, None, None]
    mu, s = GROUP_MEAN[None, :, None], GROUP_SD[None, None, :]
    var = s ** 2 + se ** 2
    log_lik = np.sum(-0.5 * (y - mu) ** 2 / var - 0.5 * np.log(2 * np.pi * var), axis=0)
    log_post = log_lik - 0.5 * (GROUP_SD[None, :] / GROUP_SD_PRIOR_SCALE) ** 2
    weight = np.exp(log_post - logsumexp(log_post))
    m_mean = float(np.sum(weight * GROUP_MEAN[:, None]))
    m_var = float(np.sum(weight * (GROUP_MEAN[:, None] - m_mean) ** 2))
    s2 = float(np.sum(weight * GROUP_SD[None, :] ** 2))
    return {"mean": m_mean, "sd": float(np.sqrt(s2 + m_var)),
            "group_sd": float(np.sum(weight * GROUP_SD[None, :]))}


def priors(datasets: dict[str, dict], without: str | None = None) -> dict[str, dict]:
    """``{exponent: {mean, sd, group_sd}}`` learnt from every data set but ``without``."""
    keep = [d for d in datasets if d != without]
    return {e: hierarchical_normal([datasets[d][e]["y"] for d in keep],
                                   [datasets[d][e]["se"] for d in keep]) for e in EXPONENTS}


def prior_fields(prior: dict[str, dict]) -> dict[str, float]:
    """:class:`PriorConfig` fields of a learnt prior (rounded to 3 decimals, as the default)."""
    return {f"{e}_{part}": round(prior[e][part], 3) for e in EXPONENTS for part in ("mean", "sd")}


def render(result: dict, settings: dict) -> list[str]:
    lines = [
        "# Exponent priors: learnt across data sets",
        "",
        f"Produced by `experiments/calibrate_exponents.py` (per split a fit of all its rows, NUTS "
        f"{settings['chains']} chains x {settings['samples']} draws, {settings['warmup']} warmup, "
        f"under the vague prior N(0.35, 0.15); hierarchical normal model per exponent, "
        f"`s ~ HalfNormal({GROUP_SD_PRIOR_SCALE:g})`; see the script's docstring).",
        "",
        "## Per split: all rows",
        "",
        "| split | rows | alpha mean [90%] | beta mean [90%] | r_hat |",
        "|---|---|---|---|---|",
    ]
    for name, fit in result["fits"].items():
        a, b = fit["alpha"], fit["beta"]
        lines.append(f"| {name} | {fit['rows']} | {a['mean']:.3f} [{a['ci90'][0]:.3f}, "
                     f"{a['ci90'][1]:.3f}] | {b['mean']:.3f} [{b['ci90'][0]:.3f}, "
                     f"{b['ci90'][1]:.3f}] | {fit['r_hat']:.3f} |")
    lines += ["", "## Per data set", "", "| data set | splits | alpha y (se) | beta y (se) |",
              "|---|---|---|---|"]
    for name, d in result["datasets"].items():
        lines.append(f"| {name} | {', '.join(d['splits'])} | {d['alpha']['y']:.3f} "
                     f"({d['alpha']['se']:.3f}) | {d['beta']['y']:.3f} ({d['beta']['se']:.3f}) |")
    lines += ["", "## Learnt priors (predictive for a new data set)", "",
              "| learnt from | alpha ~ N(mean, sd) | beta ~ N(mean, sd) | group sd: alpha, beta |",
              "|---|---|---|---|"]
    for label, p in [("all data sets (the package default)", result["all"])] + [
            (f"all but {k}", v) for k, v in result["lodo"].items()]:
        lines.append(f"| {label} | N({p['alpha']['mean']:.3f}, {p['alpha']['sd']:.3f}) | "
                     f"N({p['beta']['mean']:.3f}, {p['beta']['sd']:.3f}) | "
                     f"{p['alpha']['group_sd']:.3f}, {p['beta']['group_sd']:.3f} |")
    fields = ", ".join(f"`{k} = {v:g}`" for k, v in result["default"].items())
    lines += ["", f"**Default:** {fields}. Each data set's held-out check uses the prior learnt "
                  "without it (`extrapolation_check.py --exponent-prior lodo`)."]
    return lines


def main(argv=None) -> str:
    ec = _extrapolation_check()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--splits", default=",".join(ec.LOADERS))
    parser.add_argument("--tiny", action="store_true", help="tiny settings (smoke test)")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--out", type=Path, default=RESULTS / "exponent_calibration.md")
    args = parser.parse_args(argv)
    settings = TINY if args.tiny else FULL
    splits = ec.load_splits(args.data, args.splits.split(","))
    vague = PriorConfig(alpha_mean=0.35, alpha_sd=0.15, beta_mean=0.35, beta_sd=0.15)
    refitter = Refitter(prior=vague, nuts=NutsConfig(num_warmup=settings["warmup"],
                                                     num_samples=settings["samples"],
                                                     num_chains=settings["chains"]))
    fits = {}
    for split in splits:
        fits[split.name] = fit_exponents(split, args.data, settings, args.cache, refitter)
        print(f"{split.name}: alpha {fits[split.name]['alpha']['mean']:.3f}, beta "
              f"{fits[split.name]['beta']['mean']:.3f}, r_hat {fits[split.name]['r_hat']:.3f}, "
              f"{fits[split.name]['seconds']:.0f} s", flush=True)
    datasets = per_dataset(fits, splits)
    result = {"fits": fits, "datasets": datasets, "all": priors(datasets),
              "lodo": {k: priors(datasets, without=k) for k in datasets},
              "settings": settings, "source": "experiments/calibrate_exponents.py"}
    result["default"] = prior_fields(result["all"])
    result["lodo_fields"] = {k: prior_fields(v) for k, v in result["lodo"].items()}
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(result, indent=1) + "\n")
    table = atomic_write_lines(args.out, render(result, settings))
    print(table)
    return table


if __name__ == "__main__":
    main()

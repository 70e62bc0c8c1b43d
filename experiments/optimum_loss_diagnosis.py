"""Why the Bayes fit's optimal loss is too pessimistic on Porian et al. 2024 (issue 7).

``experiments/extrapolation_check.py`` fits Porian et al.'s isoFLOP points at budgets
<= 1.6e18 and predicts the held-out isoFLOP vertices at 3.2e18-2.56e19; the predicted optimal
loss is too high at every held-out budget, more so the larger the budget. This script refits
the package's model (generic rows: the core law, the isoFLOP-distance likelihood, the default
priors) on variants of the fit rows and reports, per variant:

- the posterior of ``E, alpha, beta, A, B`` (and the likelihood's ``sigma``, ``s_far``);
- per budget, the isoFLOP vertex loss of the data (``isoflops.quadratic_vertex``, the rule of
  the held-out table) against the fitted law's optimal loss (posterior median of ``L_opt(C)``,
  the law without the discrepancy) and its 90% interval;
- the signed and mean absolute error at the held-out budgets, and, for the internal split
  (fit budgets <= 2e17), at the fit set's own larger budgets 4e17-1.6e18 (no held-out row used).

Variants (each a fit of the same model, only the rows or one prior changed):

- ``baseline``: the held-out table's fit rows (budgets <= 1.6e18);
- ``hindsight``: every budget (3.2e18-2.56e19 too): can the law and our likelihood represent the
  held-out vertices at all? ``hindsight-near``: the same without the rows more than one nat of
  size from their budget's own vertex;
- ``near``: the fit rows within one nat of size of their budget's own vertex
  (``|ln N - ln N_v(C)| <= 1``; far-off-frontier rows dropped);
- ``no-small``: the fit rows at budgets >= 1e17 (the three smallest budgets dropped);
- ``no-small-near``: both cuts;
- ``homoscedastic``: ``far_scale = 1e-3`` (``s_far`` pinned near 0: the likelihood before it
  widened with the frontier distance, commit 67f62c9, i.e. the model the issue was filed on);
- ``literature-exponents``: ``alpha, beta ~ N(0.35, 0.05)``, the spread of published fits (a
  sensitivity check of the prior, not a candidate: it was not chosen by any rule);
- ``internal``: budgets <= 2e17 only, scored on the fit set's budgets 4e17-1.6e18;
- ``fv-<cut>``: forward validation inside the fit set (budgets ``cut``-4e17, scored on 8e17 and
  1.6e18): would a rule that picks the smallest budget to fit by the fit rows' own later
  budgets drop the small budgets? ``from-<cut>``: the fit rows from ``cut`` on, scored on the
  held-out budgets (what such a rule would then predict).

Besides the held-out table's vertex (the target), the table reports each budget's best run and
its local vertex (the parabola of the runs within one nat of the best run,
:func:`local_vertices`): on the no-decay set the global parabola's minimum lies below every
run at several budgets.

    nice -n 10 python experiments/optimum_loss_diagnosis.py
    python experiments/optimum_loss_diagnosis.py --tiny --sets porian-cosine --variants baseline
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import inspect
import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from bayes_scaling import law, model
from bayes_scaling.features import features_from_generic
from bayes_scaling.files import atomic_write_lines, atomic_write_text
from bayes_scaling.inference import NutsConfig, Refitter
from bayes_scaling.isoflops import quadratic_vertex
from bayes_scaling.model import PriorConfig
from bayes_scaling.summary import equal_tailed

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
CACHE = ROOT / "experiments" / "out" / "optimum_loss_diagnosis"
#: Quick settings (2 chains x 500 + 500): diagnosis, not final numbers; the held-out table
#: itself runs 4 x 1000 + 1000.
QUICK = dict(warmup=500, samples=500, chains=2)
TINY = dict(warmup=20, samples=20, chains=1)
HELD_MIN = 2e18  # the held-out table's split: fit budgets <= 1.6e18
INTERNAL_MAX = 3e17  # internal split: fit budgets <= 2e17, score 4e17-1.6e18
NEAR_NATS = 1.0
SMALL_MAX = 6e16  # "no-small" drops the budgets 1.25e16, 2.5e16, 5e16
SETS = {"porian-cosine": "Cosine decay", "porian-nodecay": "Optimizer tuning (no decay)"}


class Variant(NamedTuple):
    """One refit and what it is scored on.

    It fits the rows at budgets ``c_min <= C < c_max`` (``near``: only those within one nat of
    size of their budget's own vertex) with ``prior`` overriding :class:`PriorConfig`, and is
    scored at the budgets ``score_min < C < score_max``.
    """

    name: str
    what: str
    c_min: float = 0.0
    c_max: float = HELD_MIN
    near: bool = False
    prior: tuple = ()  # (name, value) overrides of PriorConfig
    score_min: float = HELD_MIN
    score_max: float = np.inf


#: Forward validation inside the fit set: fit budgets [cut, 4e17], score 8e17 and 1.6e18.
FV_MAX, FV_CUTS = 6e17, (1.25e16, 2.5e16, 5e16, 1e17)
VARIANTS = (
    Variant("baseline", "the held-out table's fit rows (budgets <= 1.6e18)"),
    Variant("hindsight", "every budget, held-out ones included", c_max=np.inf),
    Variant("hindsight-near", "every budget, rows within 1 nat of their vertex", c_max=np.inf,
            near=True),
    Variant("near", "fit rows within 1 nat of size of their budget's vertex", near=True),
    Variant("no-small", "fit rows at budgets >= 1e17", c_min=SMALL_MAX),
    Variant("no-small-near", "fit rows at budgets >= 1e17, within 1 nat of their vertex",
            c_min=SMALL_MAX, near=True),
    Variant("homoscedastic", "fit rows; s_far ~ HalfNormal(1e-3) (no widening)",
            prior=(("far_scale", 1e-3),)),
    Variant("literature-exponents", "fit rows; alpha, beta ~ N(0.35, 0.05) (sensitivity only: "
            "the spread of published fits)", prior=(("alpha_sd", 0.05), ("beta_sd", 0.05))),
    Variant("internal", "budgets <= 2e17 only, scored on 4e17-1.6e18", c_max=INTERNAL_MAX,
            score_min=INTERNAL_MAX, score_max=HELD_MIN),
    *(Variant(f"fv-{cut:.3g}", f"forward validation: budgets {cut:.3g}-4e17, scored on "
              "8e17-1.6e18", c_min=cut * 0.9, c_max=FV_MAX, score_min=FV_MAX,
              score_max=HELD_MIN) for cut in FV_CUTS),
    *(Variant(f"from-{cut:.3g}", f"fit rows at budgets {cut:.3g}-1.6e18", c_min=cut * 0.9)
      for cut in FV_CUTS[1:3]),
)


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Rows(NamedTuple):
    """All isoFLOP points of one Porian set (fit and held-out rows together)."""

    n: np.ndarray
    d: np.ndarray
    c: np.ndarray
    loss: np.ndarray


def load_set(data: Path, name: str) -> Rows:
    """The set's rows as ``extrapolation_check`` reads them (its fit and held rows joined)."""
    split = _load_script("extrapolation_check").load_porian(data, SETS[name], name)
    return Rows(*(np.concatenate([split.fit[k], split.held[k]]) for k in (1, 2, 3, 4)))


def vertices(rows: Rows) -> dict[float, tuple[float, float]]:
    """``{C: (N_vertex, loss_vertex)}`` of every budget (the held-out table's vertex rule)."""
    out = {}
    for c in np.unique(rows.c):
        at = rows.c == c
        log_n, loss_v, _ = quadratic_vertex(np.log(rows.n[at]), rows.loss[at])
        out[float(c)] = (float(np.exp(log_n)), float(loss_v))
    return out


def local_curvature(rows: Rows) -> dict[float, float]:
    """``{C: d^2 loss / d(ln N)^2}`` of the parabola of each budget's runs near its best run.

    Under the law, at the optimum of budget ``C`` this is ``alpha beta (L_opt(C) - E)``
    (differentiate ``E + A N^-alpha + B (C / 6N)^-beta`` twice in ``ln N`` and use the
    optimum's condition ``alpha A N^-alpha = beta B D^-beta``): the profiles must narrow in
    proportion to the reducible loss, with one ``alpha beta`` at every budget.
    """
    out = {}
    for c in np.unique(rows.c):
        at = rows.c == c
        log_n, loss = np.log(rows.n[at]), rows.loss[at]
        near = np.abs(log_n - log_n[np.argmin(loss)]) <= NEAR_NATS
        out[float(c)] = float(2.0 * np.polyfit(log_n[near], loss[near], 2)[0])
    return out


def local_vertices(rows: Rows) -> dict[float, tuple[float, float]]:
    """``{C: (N, loss)}``: the vertex of each budget's runs within one nat of its best run.

    A check of the target, not the target: the global parabola of a strongly asymmetric profile
    (the no-decay set's largest models at small budgets sit several nats above the rest) can put
    its minimum below every run.
    """
    out = {}
    for c in np.unique(rows.c):
        at = rows.c == c
        log_n, loss = np.log(rows.n[at]), rows.loss[at]
        near = np.abs(log_n - log_n[np.argmin(loss)]) <= NEAR_NATS
        x, loss_v, _ = quadratic_vertex(log_n[near], loss[near])
        out[float(c)] = (float(np.exp(x)), float(loss_v))
    return out


def variant_mask(rows: Rows, variant: Variant) -> np.ndarray:
    """Which rows ``variant`` fits (``near``: each budget's own vertex, no held-out row)."""
    vert = vertices(rows)
    mask = (rows.c >= variant.c_min) & (rows.c < variant.c_max)
    if variant.near:
        mask &= np.abs(np.log(rows.n) - np.log([vert[float(c)][0] for c in rows.c])) <= NEAR_NATS
    return mask


def _key(rows: Rows, mask, prior: PriorConfig, settings: dict) -> str:
    h = hashlib.sha256()
    for array in rows:
        h.update(np.ascontiguousarray(array[mask], np.float64).tobytes())
    h.update(json.dumps([asdict(prior), settings], sort_keys=True).encode())
    for obj in (law, model.sample_params, model.scaling_model, model.likelihood_scale):
        h.update(inspect.getsource(obj).encode())
    return h.hexdigest()[:16]


def fit_variant(rows: Rows, variant: Variant, settings: dict, cache: Path, seed: int) -> dict:
    """Posterior summaries and per-budget optimal losses of one variant (cached as JSON)."""
    prior = replace(PriorConfig(), **dict(variant.prior))
    mask = variant_mask(rows, variant)
    path = cache / f"{variant.name}-{_key(rows, mask, prior, settings)}.json"
    if path.is_file():
        return json.loads(path.read_text())
    refitter = Refitter(prior=prior, nuts=NutsConfig(
        num_warmup=settings["warmup"], num_samples=settings["samples"],
        num_chains=settings["chains"], exact_capacity=True))
    post = refitter.fit(jax.random.key(seed), features_from_generic(rows.n[mask], rows.d[mask]),
                        rows.loss[mask])
    draws = post.draws
    params = {k: [float(v) for v in equal_tailed(np.asarray(draws[k]))]
              for k in ("E", "alpha", "beta", "A", "B", "sigma", "s_far")}
    optima = {}
    for c in vertices(rows):
        opt = post.optimum(c)
        optima[repr(c)] = {"loss": [float(v) for v in equal_tailed(opt.law_loss)],
                           "n": [float(v) for v in equal_tailed(opt.n_params)]}
    result = {"rows": int(mask.sum()), "params": params, "optima": optima,
              "r_hat": post.diagnostics.r_hat_max, "divergences": post.diagnostics.divergences,
              "seconds": refitter.last_fit_seconds}
    atomic_write_text(path, json.dumps(result))
    return result


def scored_budgets(rows: Rows, variant: Variant) -> list[float]:
    return [c for c in vertices(rows) if variant.score_min < c < variant.score_max]


def errors(rows: Rows, result: dict, variant: Variant, local: bool = False) -> list[float]:
    """Predicted (posterior median) minus vertex optimal loss at the scored budgets.

    ``local``: against :func:`local_vertices` instead of the held-out table's vertex.
    """
    vert = local_vertices(rows) if local else vertices(rows)
    return [result["optima"][repr(c)]["loss"][1] - vert[c][1]
            for c in scored_budgets(rows, variant)]


# ----------------------------------------------------------------------------- table
def _interval(v, fmt="{:.3g}") -> str:
    lo, med, hi = v
    return f"{fmt.format(med)} [{fmt.format(lo)}, {fmt.format(hi)}]"


def render(results: dict, sets: dict[str, Rows], settings: dict) -> list[str]:
    lines = [
        "# Porian et al. 2024: why the optimal loss is too pessimistic",
        "",
        f"Produced by `experiments/optimum_loss_diagnosis.py` (NUTS {settings['chains']} chains "
        f"x {settings['samples']} draws, {settings['warmup']} warmup; generic rows, default "
        "priors unless the variant says otherwise). Optimal loss: posterior median of the law's "
        "`L_opt(C)` (no discrepancy); vertex: the data's isoFLOP vertex at that budget "
        "(`quadratic_vertex`, the held-out table's rule). Errors are predicted minus vertex "
        "(positive: too pessimistic). `near`: `|ln N - ln N_v(C)| <= 1` with `N_v(C)` each "
        "budget's own vertex (no held-out row is used to select the fit rows of a non-hindsight "
        "variant).",
        "",
        "## Held-out optimal-loss error per variant",
        "",
        "| set | variant | rows fitted | E | alpha | beta | sigma | s_far | scored budgets "
        "| error per scored budget | mean abs error | mean abs error, local vertex | r_hat |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for set_name, by_variant in results.items():
        rows = sets[set_name]
        for variant in VARIANTS:
            if variant.name not in by_variant:
                continue
            res = by_variant[variant.name]
            err = errors(rows, res, variant)
            p = res["params"]
            budgets = scored_budgets(rows, variant)
            lines.append(
                f"| {set_name} | {variant.name} | {res['rows']} | {p['E'][1]:.2f} | "
                f"{p['alpha'][1]:.2f} | {p['beta'][1]:.2f} | {p['sigma'][1]:.3f} | "
                f"{p['s_far'][1]:.2f} | {min(budgets):.2g}-{max(budgets):.2g} | "
                f"{' '.join(f'{e:+.3f}' for e in err)} | {np.mean(np.abs(err)):.3f} | "
                f"{np.mean(np.abs(errors(rows, res, variant, local=True))):.3f} | "
                f"{res['r_hat']:.3f} |")
    lines += ["", "Variants:", ""]
    lines += [f"- `{v.name}`: {v.what}" for v in VARIANTS]
    for set_name, by_variant in results.items():
        rows = sets[set_name]
        lines += ["", f"## {set_name}: posterior (median [90%])", "",
                  "| variant | E | alpha | beta | A | B | sigma | s_far |",
                  "|---|---|---|---|---|---|---|---|"]
        for variant in VARIANTS:
            if variant.name in by_variant:
                p = by_variant[variant.name]["params"]
                lines.append(f"| {variant.name} | " + " | ".join(
                    _interval(p[k]) for k in ("E", "alpha", "beta", "A", "B", "sigma", "s_far"))
                    + " |")
        shown = [v.name for v in VARIANTS if v.name in by_variant]
        lines += ["", f"## {set_name}: optimal loss per budget, law minus vertex", "",
                  "| budget | fitted by baseline | vertex N | vertex loss | best run | local "
                  "vertex | " + " | ".join(shown) + " |",
                  "|---|---|---|---|---|---|" + "---|" * len(shown)]
        local = local_vertices(rows)
        for c, (n_v, loss_v) in vertices(rows).items():
            cells = [f"{by_variant[v]['optima'][repr(c)]['loss'][1] - loss_v:+.3f}"
                     for v in shown]
            lines.append(f"| {c:.3g} | {'yes' if c < HELD_MIN else 'no'} | {n_v:.3g} | "
                         f"{loss_v:.4f} | {rows.loss[rows.c == c].min():.4f} | "
                         f"{local[c][1]:.4f} | " + " | ".join(cells) + " |")
    lines += curvature_check(results, sets)
    return lines


def curvature_check(results: dict, sets: dict[str, Rows]) -> list[str]:
    """Each budget's ``alpha beta`` implied by its profile's curvature, at two fitted ``E``."""
    lines = ["", "## Curvature check: the alpha beta each budget's isoFLOP profile implies", "",
             "Per budget `k / (L_v - E)`, with `k` the curvature of the profile near its best "
             "run (`local_curvature`) and `L_v` its local vertex loss. Under the law it is one "
             "number, `alpha beta`, at every budget. Shown at the baseline's and the "
             "hindsight fit's posterior median `E` (last row: their `alpha beta`)."]
    for set_name, by_variant in results.items():
        fits = [v for v in ("baseline", "hindsight") if v in by_variant]
        if not fits:
            continue
        rows = sets[set_name]
        curv, local = local_curvature(rows), local_vertices(rows)
        e = {v: by_variant[v]["params"]["E"][1] for v in fits}
        lines += ["", f"### {set_name}", "",
                  "| budget | fitted by baseline | curvature | " + " | ".join(
                      f"implied alpha beta at E = {e[v]:.2f} ({v})" for v in fits) + " |",
                  "|---|---|---|" + "---|" * len(fits)]
        for c, k in curv.items():
            lines.append(f"| {c:.3g} | {'yes' if c < HELD_MIN else 'no'} | {k:.3f} | " + " | ".join(
                f"{k / (local[c][1] - e[v]):.3f}" for v in fits) + " |")
        ab = {v: by_variant[v]["params"]["alpha"][1] * by_variant[v]["params"]["beta"][1]
              for v in fits}
        lines.append("| the fit's alpha x beta (medians) | | | " + " | ".join(
            f"{ab[v]:.3f}" for v in fits) + " |")
    return lines


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--variants", default=",".join(v.name for v in VARIANTS))
    parser.add_argument("--tiny", action="store_true", help="tiny settings (smoke test)")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--out", type=Path, default=RESULTS / "optimum_loss_diagnosis.md")
    return parser.parse_args(argv)


def main(argv=None) -> str:
    args = parse(argv)
    settings = TINY if args.tiny else QUICK
    names = args.sets.split(",")
    wanted = args.variants.split(",")
    unknown = [n for n in names if n not in SETS] + [
        v for v in wanted if v not in {x.name for x in VARIANTS}]
    if unknown:
        raise SystemExit(f"--sets/--variants: unknown names {', '.join(unknown)}")
    sets = {name: load_set(args.data, name) for name in names}
    results = {}
    for i, (name, rows) in enumerate(sets.items()):
        results[name] = {}
        for variant in VARIANTS:
            if variant.name in wanted:
                results[name][variant.name] = fit_variant(rows, variant, settings, args.cache,
                                                          seed=i)
                print(f"{name} {variant.name}: mean |error| "
                      f"{np.mean(np.abs(errors(rows, results[name][variant.name], variant))):.3f}",
                      flush=True)
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(results, indent=1))
    table = atomic_write_lines(args.out, render(results, sets, settings))
    print(table)
    return table


if __name__ == "__main__":
    main()

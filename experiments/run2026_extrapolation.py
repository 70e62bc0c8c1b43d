"""Why is the 2026 prediction optimistic? The law's extrapolation, with and without noise.

The loop of ``bayes-scaling run --api 2026`` (CLI defaults, in-process 2026 simulator on a virtual
clock, as in ``run2026_quality.py``) buys its runs on one truth; then the final fit is made twice
on the same completed runs: once on the losses the server returned ("observed") and once on the
truth's noise-free mean final loss of each run ("noise-free"). Each fit's law (median ``E``,
``A``, ``B``, ``alpha``, ``beta`` in the model's internal units) is listed beside the truth's
constants, and on a ladder of configurations from inside the data to the 48-hour target (the
loop's recommended configuration's shape at more and more tokens, and the truth's best 48-hour
configuration), each at the fit's posterior-median optimal learning rate, the law's mean loss is
compared with the truth's: ``err = law - truth`` with ``u`` the extrapolation distance (nats
beyond the fitted runs). If the noise-free fit is as optimistic as the observed one, the
optimism is the law's extrapolation in tokens, not noise, the token count, the runtime model or
a missing discrepancy.

Two ablations of the 2026 model terms (:mod:`bayes_scaling.model`) are fitted on the noise-free
losses too: "no plateau" caps the loss at the untrained ``ln 32000`` (the prior of 2025 rows,
``l_init ~ Normal(ln 32000, 0.2)``) instead of the early plateau, and "no warmup term" drops the
runs' warmup steps (so :func:`bayes_scaling.law.warmup_penalty` is zero on every run). With
both, the model is the one before those terms. Each fit's law line adds the medians of the
saturation level ``l_init``, the learning rate's tokens exponent ``b_lr`` and ``c_warm``.

With ``--loop-model before`` the loop itself buys its runs with the model before both terms
(the same ablation as its fits; the decision rules of the loop are today's), so the table shows
what the terms do on the design that model chooses.

Usage::

    python experiments/run2026_extrapolation.py [--truth 0] [--seed 0] [--loop-model before]
        [--tiny] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import runpy
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import jax
import numpy as np

from bayes_scaling.api2026.schemas import TrainingConfig
from bayes_scaling.candidates2026 import law_features, training_config
from bayes_scaling.features import RunFeatures
from bayes_scaling.files import atomic_write_text
from bayes_scaling.inference import Refitter
from bayes_scaling.jobs_loop import jobs_backend, run_jobs_loop
from bayes_scaling.loop import LoopConfig, ModelBackend
from bayes_scaling.model import PriorConfig
from bayes_scaling.simulator.virtual2026 import VirtualJobsOracle

# the sibling script's truths, loop settings and truth search (scripts are not a package)
quality = SimpleNamespace(**runpy.run_path(str(Path(__file__).with_name("run2026_quality.py"))))

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "run2026_extrapolation.md"


def _at_posterior_lr(posterior, cfg):
    """``cfg`` at the posterior-median optimal learning rate of its shape, batch and tokens."""
    lr = float(np.median(posterior.optimal_learning_rate(law_features([cfg]))))
    sched = cfg.optimizer_config.lr_scheduler
    return cfg.model_copy(update={"optimizer_config": cfg.optimizer_config.model_copy(
        update={"lr_scheduler": sched.model_copy(update={"peak_value": float(f"{lr:.3g}")})})})


def ladder(rec, best, token_factors: Sequence[float]) -> list:
    """The recommended shape at its tokens times each factor, then the truth's best config."""
    arch, sched = rec.architecture_config, rec.optimizer_config.lr_scheduler
    out = []
    for factor in token_factors:
        out.append(training_config(
            hidden_size=arch.hidden_size, num_layers=arch.num_hidden_layers,
            head_dim=arch.head_dim, intermediate_size=arch.intermediate_size,
            peak_learning_rate=sched.peak_value, warmup_frac=sched.warmup_frac,
            batch_size=rec.train_batch_size, tokens=rec.total_train_tokens * factor,
            max_runtime_seconds=43200.0, n_evals=quality.N_EVALS))
    return out + [best]


def compare(truth, posterior, configs) -> list[dict]:
    """Law mean against the truth's mean on each config, at the posterior's lr*."""
    rows = []
    for cfg in configs:
        cfg = _at_posterior_lr(posterior, cfg)
        feats = law_features([cfg])
        law = float(np.median(posterior.predict_mean(feats)))
        true = quality.true_loss(truth, cfg)
        arch = cfg.architecture_config
        rows.append({"hidden_size": arch.hidden_size, "num_layers": arch.num_hidden_layers,
                     "batch_size": cfg.train_batch_size, "tokens": cfg.total_train_tokens,
                     "lr": cfg.optimizer_config.lr_scheduler.peak_value, "truth": true,
                     "law": law, "err": law - true,
                     "u": float(posterior.extrapolation_distance(feats)[0])})
    return rows


def _without_warmup(features: RunFeatures) -> RunFeatures:
    return RunFeatures(**{**features.as_dict(), "warmup_steps": None})


def _no_plateau_prior() -> PriorConfig:
    default = PriorConfig()
    return PriorConfig(plateau_mean=default.l_init_mean, plateau_sd=default.l_init_sd)


def before_backend(config) -> ModelBackend:
    """The loop's backend with the model before the 2026 terms (no plateau, no warmup term)."""
    nuts = LoopConfig.from_flat(num_warmup=config.num_warmup, num_samples=config.num_samples,
                                num_chains=config.num_chains,
                                final_num_warmup=config.final_num_warmup,
                                final_num_samples=config.final_num_samples,
                                final_num_chains=config.final_num_chains)
    in_loop = Refitter(nuts=nuts.nuts, prior=_no_plateau_prior())
    final = Refitter(nuts=nuts.final_nuts, prior=_no_plateau_prior())
    return ModelBackend(
        featurize=law_features,
        fit=lambda key, features, loss: in_loop.fit(key, _without_warmup(features), loss),
        recommend=None,
        final_fit=lambda key, features, loss: final.fit(key, _without_warmup(features), loss))


def main(argv: Sequence[str] | None = None) -> str:
    """Run the loop, fit twice, write the report, return it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--truth", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=float, default=43200.0, help="B200-seconds")
    parser.add_argument("--hours", type=float, default=48.0, help="target B200-hours")
    parser.add_argument("--time-scale", type=float, default=3000.0)
    parser.add_argument("--tiny", action="store_true", help="tiny budget and NUTS (smoke test)")
    parser.add_argument("--loop-model", choices=("2026", "before"), default="2026",
                        help="the model the loop buys its runs with (module docstring)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = DEFAULT_OUT if args.loop_model == "2026" else DEFAULT_OUT.with_name(
            "run2026_extrapolation_before.md")
    for name in ("num_warmup", "num_samples", "final_num_warmup", "final_num_samples",
                 "final_num_chains"):
        setattr(args, name, None)
    if args.tiny:
        args.budget, args.hours = min(args.budget, 3000.0), min(args.hours, 2.0)
    truth = quality.perturbed_truth(args.truth)
    config = quality.loop_config(args)
    oracle = VirtualJobsOracle(truth, args.budget, time_scale=args.time_scale)
    result = run_jobs_loop(jax.random.PRNGKey(args.seed), oracle, config, sleep=oracle.sleep,
                           backend=None if args.loop_model == "2026" else before_backend(config))
    done = [o for o in result.outcomes if o.state == "completed"]
    best = quality.truth_best(truth, args.hours, tiny=args.tiny)
    configs = ladder(result.training_config, TrainingConfig.model_validate(best["config"]),
                     (0.01, 0.1, 0.3, 1.0))
    backend = jobs_backend(config)  # the loop's own final NUTS settings
    fit = backend.final_fit or backend.fit
    nuts = LoopConfig.from_flat(final_num_warmup=config.final_num_warmup,
                                final_num_samples=config.final_num_samples,
                                final_num_chains=config.final_num_chains).final_nuts
    no_plateau = Refitter(nuts=nuts, prior=_no_plateau_prior()).fit
    features = law_features([o.config for o in done])
    no_warmup = _without_warmup(features)
    record = {"truth": args.truth, "seed": args.seed, "n_runs": len(done),
              "truth_constants": {k: getattr(truth, k) for k in ("E", "A", "B_data", "alpha",
                                                                  "beta", "K", "gamma", "lam")},
              "fits": {}}
    data = {"observed": [o.final_loss for o in done],
            "noise-free": [quality.true_loss(truth, o.config) for o in done]}
    fits = {"observed": (fit, features, data["observed"]),
            "noise-free": (fit, features, data["noise-free"]),
            "noise-free, no plateau": (no_plateau, features, data["noise-free"]),
            "noise-free, no warmup term": (fit, no_warmup, data["noise-free"]),
            "noise-free, neither (the model before both)": (no_plateau, no_warmup,
                                                            data["noise-free"])}
    for name, (fitter, feats, losses) in fits.items():
        posterior = fitter(jax.random.PRNGKey(args.seed + 1), feats,
                           np.asarray(losses, np.float64))
        law = posterior.law_params()
        medians = {k: float(np.median(getattr(law, k))) for k in law._fields}
        medians.update({k: float(np.median(posterior.draws[k]))
                        for k in ("l_init", "b_lr", "c_warm")})
        record["fits"][name] = {"law": medians, "rows": compare(truth, posterior, configs)}
    bought = ("" if args.loop_model == "2026"
              else " buying its runs with the model before the 2026 terms")
    lines = [
        "# `run --api 2026`: where the predicted loss goes wrong",
        "",
        f"Written by `experiments/run2026_extrapolation.py{' --tiny' if args.tiny else ''}`: "
        f"truth {args.truth}, seed {args.seed}, the loop at the CLI defaults{bought} "
        "on the in-process "
        f"2026 simulator ({len(done)} completed runs), then the final fit on the same runs' "
        "observed final losses and on the truth's noise-free mean final losses. Each row is at "
        "the fit's posterior-median optimal learning rate; the last row is the truth's best "
        f"{args.hours:g}-hour configuration, the others the recommended shape at 1%, 10%, 30% and "
        "100% of its tokens. err = law mean - truth mean; u = nats beyond the fitted runs. "
        "The ablations (module docstring) refit the noise-free losses without the 2026 "
        "model's plateau cap, without its warmup term, and without both.",
        "",
        "Truth constants: " + ", ".join(f"{k} {v:.4g}" for k, v in
                                        record["truth_constants"].items()) + ".",
        "",
    ]
    for name, fitted in record["fits"].items():
        head, _, ablation = name.partition(", ")
        lines += [f"## {head} losses{', ' + ablation if ablation else ''}", "",
                  "Law (medians, internal units): " + ", ".join(
                      f"{k} {v:.4g}" for k, v in fitted["law"].items()) + ".", "",
                  "| hidden | layers | batch | tokens | lr | truth | law | err | u |",
                  "|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['hidden_size']} | {r['num_layers']} | {r['batch_size']} | "
                  f"{r['tokens']:.3g} | {r['lr']:.3g} | {r['truth']:.4f} | {r['law']:.4f} | "
                  f"{r['err']:+.4f} | {r['u']:.2f} |" for r in fitted["rows"]]
        lines.append("")
    text = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, text)
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
    return text


if __name__ == "__main__":
    print(main())

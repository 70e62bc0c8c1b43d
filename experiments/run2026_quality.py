"""How good is `run --api 2026`'s recommendation? Regret against the 2026 truth's own optimum.

For each seed and each truth (the default 2026 truth and, with ``--perturbed K``, K truths whose
loss-surface and learning-rate constants are scaled by seeded log-normal factors), this runs the
loop of ``bayes-scaling run --api 2026`` (:func:`bayes_scaling.jobs_loop.run_jobs_loop`, the
command's default settings unless flags say otherwise) against the 2026 simulator in-process on a
virtual clock (:class:`~bayes_scaling.simulator.virtual2026.VirtualJobsOracle`: the server's truth,
timeout rule, charges and reservations, no HTTP and no waiting, so a run costs only its fits and
is deterministic), then evaluates the recommended TrainingConfig on the truth:

- **regret**: the true mean final validation loss of the recommended configuration minus that of
  the truth's best configuration for ``--hours`` B200-hours, found by a search over the space the
  recommendation is chosen from (widths multiples of 128 with aspect ratio d/L in [32, 256], head
  dimension 32/64/128, intermediate ratio 2, 8/3, 3, 4, warmup 0, 0.02, 0.05, 0.1, batch 128 or
  256, peak learning rate 0.5-2x the truth's optimal rate, tokens filling the hours at the
  truth's own runtime): every shape at head dimension 64, ratio 8/3, warmup 0.05, the truth's
  optimal rate and the better of batch 128 and 256 (large shapes fit the memory only at 128)
  first, then every combination of the other knobs on the best shapes;
- **knob cost**: how much of the regret the knobs the law has no term for (head dimension,
  intermediate ratio, warmup, chosen from residuals) cost: the recommended configuration's true
  loss minus the best over those three knobs at its own width, depth, batch and learning rate;
- **learning-rate cost**: the recommended configuration's true loss minus the best over peak
  learning rates 0.25-4x the truth's optimal rate at its own shape, batch and tokens;
- the predicted loss (median, 90% interval) against the true mean loss, and whether the interval
  covers it; the true runtime of the recommendation (does it fit the hours?) and whether it fits
  the truth's memory (an OOM recommendation would fail on the server: its regret is shown as
  "OOM" and left out of the regret summary, since the search keeps to runs that fit); the seconds
  spent
  of the budget, timed-out runs, runs bought and wall seconds.

Rows are appended to ``<out>.rows.jsonl`` as each run finishes (a rerun skips the finished
(seed, truth) pairs; ``--fresh`` starts over) and the Markdown summary is rewritten from them.
Each row records ``model_revision``: the last commit of ``src/`` and this script, ``+dirty`` if
either has uncommitted changes (``pool_benchmark.model_revision``); rows written before it was
recorded show "unrecorded".

Usage::

    python experiments/run2026_quality.py [--seeds 0 1 2] [--perturbed 2] [--tiny] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import runpy
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import jax
import numpy as np

from bayes_scaling.api2026.schemas import SEQ_LEN, TrainingConfig
from bayes_scaling.candidates2026 import CandidateSpace2026, training_config
from bayes_scaling.count_family import intermediate_size_for
from bayes_scaling.files import atomic_write_text
from bayes_scaling.jobs_loop import JobsLoopConfig, run_jobs_loop
from bayes_scaling.params2026 import count_params_2026
from bayes_scaling.recommend import candidate_shapes
from bayes_scaling.simulator.truth2026 import (
    Truth2026,
    chunk_seconds,
    mean_curve,
    memory_bytes,
    optimal_learning_rate_2026,
)
from bayes_scaling.simulator.virtual2026 import VirtualJobsOracle
from bayes_scaling.summary import summarize

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "run2026_quality.md"
#: What a row's result depends on: its ``model_revision`` is their last commit.
REVISION_FILES = ("src", "experiments/run2026_quality.py")
_model_revision = runpy.run_path(str(Path(__file__).with_name("pool_benchmark.py")))[
    "model_revision"]
N_EVALS = 16
#: Truth constants a perturbed truth scales, with the log-sd of each factor.
PERTURBED = {"A": 0.3, "B_data": 0.3, "alpha": 0.08, "beta": 0.08, "E": 0.05, "lam": 0.3,
             "eta0": 0.3, "a_eta": 0.15, "c_ffn": 0.5, "c_head": 0.5}
LR_FACTORS = (0.5, 0.7, 1.0, 1.4, 2.0)
#: Version of :func:`truth_best`'s search (2: stage 1 at batch 128 and 256); rows of another
#: version get the truth's best recomputed, their regret with it.
BEST_SEARCH = 2


def perturbed_truth(index: int) -> Truth2026:
    """The default truth (index 0) or one with seeded log-normal factors on :data:`PERTURBED`."""
    base = Truth2026()
    if index == 0:
        return base
    rng = np.random.default_rng(1000 + index)
    values = base.to_dict()
    for name, sd in PERTURBED.items():
        values[name] = float(values[name] * math.exp(sd * rng.standard_normal()))
    values["seed"] = index
    return Truth2026.from_mapping(values, source=f"perturbed truth {index}")


def _config(draft: dict, tokens: float) -> TrainingConfig:
    return training_config(**draft, tokens=tokens, max_runtime_seconds=43200.0, n_evals=N_EVALS)


def filled(truth: Truth2026, draft: dict, seconds: float) -> TrainingConfig | None:
    """``draft`` with the most tokens whose run takes at most ``seconds`` on the truth.

    None if not even one token unit fits or the run would not fit in memory.
    """
    unit = SEQ_LEN * draft["batch_size"] * N_EVALS

    def runtime(units: int) -> float:
        return chunk_seconds(truth, _config(draft, units * unit)) * N_EVALS

    first, second = runtime(64), runtime(128)
    slope = (second - first) / 64.0
    units = int((seconds - (first - 64 * slope)) / slope)
    while units > 0 and runtime(units) > seconds:
        units -= max(1, units // 1000)
    if units < 1:
        return None
    cfg = _config(draft, units * unit)
    return None if memory_bytes(truth, cfg) > truth.memory_bytes else cfg


def true_loss(truth: Truth2026, cfg: TrainingConfig) -> float:
    """The truth's mean final validation loss of ``cfg`` (no noise)."""
    return float(mean_curve(truth, cfg)[-1])


def _draft(d, layers, *, head_dim=64, ratio=8.0 / 3.0, warmup=0.05, batch=256, lr=1e-3) -> dict:
    return dict(hidden_size=int(d), num_layers=int(layers), head_dim=int(head_dim),
                intermediate_size=intermediate_size_for(int(d), ratio),
                peak_learning_rate=float(lr), warmup_frac=float(warmup), batch_size=int(batch))


def _at_optimal_lr(truth, draft, seconds, factor=1.0):
    """``draft`` filled to ``seconds`` at ``factor`` x the truth's optimal learning rate."""
    probe = filled(truth, draft, seconds)
    if probe is None:
        return None
    lr = optimal_learning_rate_2026(truth, probe) * factor
    return filled(truth, {**draft, "peak_learning_rate": float(f"{lr:.3g}")}, seconds)


def knob_grid(space: CandidateSpace2026):
    """Every (head dimension, intermediate ratio, warmup) of the loop's candidate space."""
    return [(h, r, w) for h in sorted(set(space.head_dims)) for r in space.intermediate_ratios
            for w in space.warmup_fracs]


def truth_best(truth: Truth2026, hours: float, *, tiny: bool = False) -> dict:
    """The truth's best configuration for ``hours`` (a two-stage search, module docstring)."""
    seconds = hours * 3600.0
    d_model, num_layers, _ = candidate_shapes(practical=True)
    keep = d_model <= (2048 if tiny else 8192)
    d_model, num_layers = d_model[keep], num_layers[keep]
    if tiny:
        d_model, num_layers = d_model[::25], num_layers[::25]
    stage1 = []
    for d, layers in zip(d_model, num_layers, strict=True):
        losses = [true_loss(truth, cfg) for batch in (128, 256)  # large shapes fit only at 128
                  if (cfg := _at_optimal_lr(truth, _draft(d, layers, batch=batch), seconds))]
        if losses:
            stage1.append((min(losses), int(d), int(layers)))
    stage1.sort()
    space = CandidateSpace2026()
    best, evaluated = None, len(stage1)
    for _, d, layers in stage1[: 2 if tiny else 6]:
        for head_dim, ratio, warmup in knob_grid(space)[: 2 if tiny else None]:
            for batch in (128, 256):
                for factor in LR_FACTORS[1:3] if tiny else LR_FACTORS:
                    draft = _draft(d, layers, head_dim=head_dim, ratio=ratio, warmup=warmup,
                                   batch=batch)
                    cfg = _at_optimal_lr(truth, draft, seconds, factor)
                    if cfg is None:
                        continue
                    evaluated += 1
                    loss = true_loss(truth, cfg)
                    if best is None or loss < best[0]:
                        best = (loss, cfg)
    loss, cfg = best
    return {"loss": loss, "config": cfg.model_dump(mode="json"), "evaluated": evaluated,
            "non_embedding": int(count_params_2026(cfg.architecture_config).non_embedding)}


def knob_cost(truth: Truth2026, cfg: TrainingConfig, hours: float) -> tuple[float, dict]:
    """True loss of ``cfg`` minus the best over head dim, ratio and warmup at its other values."""
    arch, sched = cfg.architecture_config, cfg.optimizer_config.lr_scheduler
    best = None
    for head_dim, ratio, warmup in knob_grid(CandidateSpace2026()):
        if arch.hidden_size % head_dim:
            continue
        draft = _draft(arch.hidden_size, arch.num_hidden_layers, head_dim=head_dim, ratio=ratio,
                       warmup=warmup, batch=cfg.train_batch_size, lr=sched.peak_value)
        other = filled(truth, draft, hours * 3600.0)
        if other is not None:
            loss = true_loss(truth, other)
            if best is None or loss < best[0]:
                best = (loss, {"head_dim": head_dim, "intermediate_ratio": round(ratio, 3),
                               "warmup_frac": warmup})
    own = filled(truth, _draft(arch.hidden_size, arch.num_hidden_layers, head_dim=arch.head_dim,
                               ratio=arch.intermediate_size / arch.hidden_size,
                               warmup=sched.warmup_frac, batch=cfg.train_batch_size,
                               lr=sched.peak_value), hours * 3600.0)
    if best is None:  # no variant fits the hours or the memory
        return float("nan"), {}
    own_loss = true_loss(truth, own if own is not None else cfg)
    return own_loss - best[0], best[1]


def lr_cost(truth: Truth2026, cfg: TrainingConfig) -> tuple[float, float]:
    """True loss of ``cfg`` minus the best over its peak learning rate; and that best rate."""
    star = optimal_learning_rate_2026(truth, cfg)
    sched = cfg.optimizer_config.lr_scheduler
    best = (true_loss(truth, cfg), float(sched.peak_value))
    for factor in np.geomspace(0.25, 4.0, 17):
        lr = float(f"{star * factor:.3g}")
        other = cfg.model_copy(update={"optimizer_config": cfg.optimizer_config.model_copy(
            update={"lr_scheduler": sched.model_copy(update={"peak_value": lr})})})
        loss = true_loss(truth, other)
        if loss < best[0]:
            best = (loss, lr)
    return true_loss(truth, cfg) - best[0], best[1]


def recommended_config(row: dict) -> TrainingConfig:
    """The recommended TrainingConfig of a row, rebuilt from its fields."""
    rec = row["recommended"]
    return training_config(
        hidden_size=rec["hidden_size"], num_layers=rec["num_layers"], head_dim=rec["head_dim"],
        intermediate_size=rec["intermediate_size"], peak_learning_rate=rec["peak_lr"],
        warmup_frac=row["chosen_knobs"]["warmup_frac"], batch_size=rec["batch_size"],
        tokens=rec["tokens"], max_runtime_seconds=43200.0, n_evals=N_EVALS)


def loop_config(args) -> JobsLoopConfig:
    """The loop's settings: the CLI's defaults, or the tiny ones."""
    if args.tiny:
        return JobsLoopConfig(target_hours=args.hours, num_initial=4, min_completed_to_fit=3,
                              planned_runs=8, max_runs=10, num_candidates=200, num_warmup=10,
                              num_samples=10, final_num_warmup=10, final_num_samples=10,
                              final_num_chains=1)  # one sampler compilation serves every fit
    settings = {k: v for k, v in {
        "num_warmup": args.num_warmup, "num_samples": args.num_samples,
        "final_num_warmup": args.final_num_warmup, "final_num_samples": args.final_num_samples,
        "final_num_chains": args.final_num_chains}.items() if v is not None}
    return JobsLoopConfig(target_hours=args.hours, **settings)


def run_one(seed: int, truth: Truth2026, best: dict, args) -> dict:
    """One loop on ``truth``; the row of measurements."""
    oracle = VirtualJobsOracle(truth, args.budget, time_scale=args.time_scale)
    config = loop_config(args)
    start = time.perf_counter()
    result = run_jobs_loop(jax.random.PRNGKey(seed), oracle, config, sleep=oracle.sleep)
    wall = time.perf_counter() - start
    cfg = result.training_config
    arch = cfg.architecture_config
    loss = true_loss(truth, cfg)
    pred = summarize(result.recommendation.predicted_loss)
    n_rec = int(count_params_2026(arch).non_embedding)
    cost, knobs = knob_cost(truth, cfg, args.hours)
    lr_loss, lr_best = lr_cost(truth, cfg)
    outcomes = result.outcomes
    return {
        "predicted": pred, "true_loss": loss, "best_loss": best["loss"],
        "regret": loss - best["loss"],  # OOM recommendations: not comparable (the run fails)
        "covered90": bool(pred["ci90"][0] <= loss <= pred["ci90"][1]),
        "true_hours": chunk_seconds(truth, cfg) * cfg.n_evals / 3600.0,
        "out_of_memory": bool(memory_bytes(truth, cfg) > truth.memory_bytes),
        "n_rec": n_rec, "n_best": best["non_embedding"],
        "n_error": abs(math.log(n_rec / best["non_embedding"])),
        "n_opt_median": float(np.median(result.posterior.optimum(result.target_flops).n_params)),
        "knob_cost": cost, "best_knobs": knobs, "lr_cost": lr_loss, "lr_best": lr_best,
        "chosen_knobs": {k: result.extra["residual_choices"][k]
                         for k in ("head_dim", "intermediate_ratio", "warmup_frac")},
        "recommended": {"hidden_size": arch.hidden_size, "num_layers": arch.num_hidden_layers,
                        "head_dim": arch.head_dim, "intermediate_size": arch.intermediate_size,
                        "batch_size": cfg.train_batch_size, "tokens": cfg.total_train_tokens,
                        "peak_lr": cfg.optimizer_config.lr_scheduler.peak_value},
        "best_config": best["config"],
        "seconds_charged": oracle.seconds_charged(), "budget": args.budget,
        "runs": len(outcomes), "completed": sum(o.state == "completed" for o in outcomes),
        "timeouts": sum(o.failure == "timeout" for o in outcomes),
        "memory_guard_removed_optimum": result.extra["target_choice"]["excluded_best"] is not None,
        "stop_reason": result.stop_reason, "wall_seconds": wall,
        "fit_seconds": result.timings.get("fit", float("nan")),
        "r_hat_max": float(result.posterior.diagnostics.r_hat_max),
    }


def _covered(row: dict, interval: str) -> bool:
    low, high = row["predicted"][interval]
    return bool(low <= row["true_loss"] <= high)


def _width(row: dict, interval: str) -> float:
    low, high = row["predicted"][interval]
    return float(high - low)


def render(rows: list[dict], args) -> str:
    """The Markdown report of every row."""
    settings = asdict(loop_config(args))
    lines = [
        "# `run --api 2026`: the recommendation against the 2026 truth's optimum",
        "",
        f"Written by `experiments/run2026_quality.py{' --tiny' if args.tiny else ''}`: the loop "
        "of `run --api 2026` on the in-process 2026 simulator (virtual clock, "
        f"time scale {args.time_scale:g}), budget {args.budget:g} B200-seconds, target "
        f"{args.hours:g} B200-hours. Loop settings: "
        + ", ".join(f"{k} {v}" for k, v in settings.items() if k.startswith(("num_", "final_")))
        + ". Truth 0 is the default truth; truths k > 0 scale "
        + ", ".join(PERTURBED) + " by seeded log-normal factors.",
        "",
        "Regret = true mean final validation loss of the recommended TrainingConfig minus the "
        "truth's best at the target (two-stage search over the recommendation's space, see the "
        "script). Knob cost = the part of the loss that the residual choice of head dimension, "
        "intermediate ratio and warmup costs at the recommended width, depth, batch and rate. "
        "N = 2026 non-embedding parameters. Revision = the last commit of src/ and this "
        "script when the row ran (+dirty: with uncommitted changes).",
        "",
        "| truth | seed | regret | knob cost | lr cost (rec lr / best lr) | predicted (90%) "
        "| true | covered | true hours | N rec / N best | N_opt median | chosen hd, ratio, warmup "
        "| spent s | runs | timeouts | wall s | revision |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = r["predicted"]
        k = r["chosen_knobs"]
        lines.append(
            f"| {r['truth']} | {r['seed']} | "
            f"{'OOM' if r.get('out_of_memory') else format(r['regret'], '.4f')} | "
            f"{r['knob_cost']:.4f} | "
            f"{r['lr_cost']:.4f} ({r['recommended']['peak_lr']:.3g} / {r['lr_best']:.3g}) | "
            f"{p['median']:.3f} ({p['ci90'][0]:.3f}-{p['ci90'][1]:.3f}) | {r['true_loss']:.3f} | "
            f"{'yes' if r['covered90'] else 'no'} | {r['true_hours']:.1f} | "
            f"{r['n_rec']:.3g} / {r['n_best']:.3g} | {r['n_opt_median']:.3g} | "
            f"{k['head_dim']}, {k['intermediate_ratio']}, {k['warmup_frac']} | "
            f"{r['seconds_charged']:.0f} | {r['runs']} | {r['timeouts']} | "
            f"{r['wall_seconds']:.0f} | {r.get('model_revision', 'unrecorded')} |")
    fits = [r for r in rows if not r.get("out_of_memory")]
    if fits:
        regret = np.array([r["regret"] for r in fits])
        knob = np.array([r["knob_cost"] for r in rows if np.isfinite(r["knob_cost"])]
                        or [np.nan])
        lr = np.array([r["lr_cost"] for r in rows])
        n_ratio = np.array([r["n_rec"] / r["n_best"] for r in rows])
        error = np.array([r["predicted"]["median"] - r["true_loss"] for r in rows])
        lines += [
            "",
            f"Summary over {len(rows)} runs: regret (over the {len(fits)} whose recommendation "
            f"fits the truth's memory) median {np.median(regret):.4f}, mean {regret.mean():.4f}, "
            f"max {regret.max():.4f} nats; N rec / N best within 0.5-2x in "
            f"{sum(0.5 <= r['n_rec'] / r['n_best'] <= 2.0 for r in rows)}/{len(rows)}; "
            f"the memory guard removed the unconstrained optimum in "
            f"{sum(r.get('memory_guard_removed_optimum', False) for r in rows)}; "
            f"knob cost mean {knob.mean():.4f}, max {knob.max():.4f}; "
            f"learning-rate cost mean {lr.mean():.4f}, max {lr.max():.4f}; N rec / N best "
            f"{n_ratio.min():.2f}-{n_ratio.max():.2f}; "
            f"predicted minus true loss mean {error.mean():+.4f}, mean |error| "
            f"{np.abs(error).mean():.4f} (range {error.min():+.4f} to {error.max():+.4f}); "
            f"50% interval covered the true loss in {sum(_covered(r, 'ci50') for r in rows)}/"
            f"{len(rows)} (width mean {np.mean([_width(r, 'ci50') for r in rows]):.3f} nats), "
            f"90% interval in {sum(r['covered90'] for r in rows)}/{len(rows)} (width mean "
            f"{np.mean([_width(r, 'ci90') for r in rows]):.3f}); recommendations over the target "
            f"time: {sum(r['true_hours'] > args.hours for r in rows)}, out of the truth's "
            f"memory: {sum(r.get('out_of_memory', False) for r in rows)}; timeouts "
            f"{sum(r['timeouts'] for r in rows)} of {sum(r['runs'] for r in rows)} runs; "
            f"wall seconds mean {np.mean([r['wall_seconds'] for r in rows]):.0f}.",
        ]
    lines += ["", "The truths' best configurations:", ""]
    seen = set()
    for r in rows:
        if r["truth"] in seen:
            continue
        seen.add(r["truth"])
        c = r["best_config"]
        a, s = c["architecture_config"], c["optimizer_config"]["lr_scheduler"]
        lines.append(
            f"- truth {r['truth']}: loss {r['best_loss']:.4f}; hidden {a['hidden_size']}, layers "
            f"{a['num_hidden_layers']}, head_dim {a['head_dim']}, intermediate "
            f"{a['intermediate_size']}, batch {c['train_batch_size']}, peak lr "
            f"{s['peak_value']:.3g}, warmup {s['warmup_frac']}, tokens "
            f"{c['total_train_tokens']:.3g}; N {r['n_best']:.3g}")
    return "\n".join(lines) + "\n"


def _best_fields(row: dict, best: dict) -> dict:
    """The fields of a row that depend on the truth's best configuration."""
    return {"best_loss": best["loss"], "regret": row["true_loss"] - best["loss"],
            "n_best": best["non_embedding"],
            "n_error": abs(math.log(row["n_rec"] / best["non_embedding"])),
            "best_config": best["config"], "best_search": BEST_SEARCH}


def main(argv: Sequence[str] | None = None) -> str:
    """Run what is missing, write the report, return it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--perturbed", type=int, default=0,
                        help="also run seed --seeds[0] on this many perturbed truths")
    parser.add_argument("--budget", type=float, default=43200.0, help="B200-seconds")
    parser.add_argument("--hours", type=float, default=48.0, help="target B200-hours")
    parser.add_argument("--time-scale", type=float, default=3000.0)
    for name in ("num-warmup", "num-samples", "final-num-warmup", "final-num-samples",
                 "final-num-chains"):
        parser.add_argument(f"--{name}", type=int, default=None)
    parser.add_argument("--tiny", action="store_true", help="tiny budget and NUTS (smoke test)")
    parser.add_argument("--fresh", action="store_true", help="ignore the rows already written")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.tiny:
        args.budget, args.hours = min(args.budget, 3000.0), min(args.hours, 2.0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows_path = args.out.with_suffix(".rows.jsonl")
    rows = [] if args.fresh or not rows_path.exists() else [
        json.loads(line) for line in rows_path.read_text().splitlines() if line.strip()]
    if args.fresh and rows_path.exists():
        rows_path.unlink()
    best: dict[int, dict] = {}
    for row in rows:  # rows written before the learning-rate cost was measured
        if "lr_cost" not in row:
            row["lr_cost"], row["lr_best"] = lr_cost(perturbed_truth(row["truth"]),
                                                     recommended_config(row))
        if row.get("best_search") != BEST_SEARCH:  # the truth's best of an older search
            if row["truth"] not in best:
                best[row["truth"]] = truth_best(perturbed_truth(row["truth"]), args.hours,
                                                tiny=args.tiny)
            row.update(_best_fields(row, best[row["truth"]]))
    if rows:
        atomic_write_text(rows_path, "".join(json.dumps(r) + "\n" for r in rows))
    done = {(r["truth"], r["seed"]) for r in rows}
    revision = _model_revision(files=REVISION_FILES)
    plan = [(0, s) for s in args.seeds] + [(k, args.seeds[0]) for k in
                                           range(1, args.perturbed + 1)]
    for truth_index, seed in plan:
        if (truth_index, seed) in done:
            continue
        truth = perturbed_truth(truth_index)
        if truth_index not in best:
            start = time.perf_counter()
            best[truth_index] = truth_best(truth, args.hours, tiny=args.tiny)
            print(f"truth {truth_index}: best {best[truth_index]['loss']:.4f} "
                  f"({best[truth_index]['evaluated']} configurations, "
                  f"{time.perf_counter() - start:.0f} s)", file=sys.stderr)
        row = {"truth": truth_index, "seed": seed,
               **run_one(seed, truth, best[truth_index], args), "best_search": BEST_SEARCH,
               "model_revision": revision}
        rows.append(row)
        with rows_path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(f"truth {truth_index} seed {seed}: regret {row['regret']:.4f}, "
              f"{row['wall_seconds']:.0f} s", file=sys.stderr)
    text = render(rows, args)
    atomic_write_text(args.out, text)
    return text


if __name__ == "__main__":
    print(main())

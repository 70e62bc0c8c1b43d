"""The active-learning loop on the 2026 job API: a seconds budget, several runs in flight.

:func:`run_jobs_loop` spends the budget of an :class:`~bayes_scaling.oracle.ExperimentOracle`
whose unit is seconds (:class:`~bayes_scaling.api2026.jobs_oracle.JobsOracle`):

1. a small space-filling design (:func:`~bayes_scaling.candidates2026.initial_design_2026`),
   priced by the runtime prior so that a resumed run proposes the same configurations;
2. then, whenever fewer than ``max_in_flight`` runs are active, fit the law to the completed runs
   (while the others keep training on the server), draw candidates over the whole space
   (width, depth, head dimension, intermediate size, peak learning rate, warmup, batch size,
   tokens), and submit the batch that most reduces the posterior variance of
   ``ln N_opt(target)`` *per FLOP* (:func:`bayes_scaling.acquisition.select_batch`, greedy and
   conditioned, with the pacing floor). Each candidate's price in seconds comes from the
   :class:`~bayes_scaling.runtime_model.RuntimeModel` refitted on every completed run's
   ``used_runtime_seconds``; its ``max_runtime_seconds`` is the model's upper quantile
   (``reservation_z`` sds) plus slack, and only candidates whose reservation fits the budget
   left (and at most ``max_run_fraction`` of the budget) compete;
3. when less than ``leftover_fraction`` of the budget is left (or nothing affordable remains),
   wait for the runs in flight (if their refunds give back more than that fraction, go on
   buying), refit with the final NUTS settings and recommend. So "budget spent" is a state of
   the ledger, and a resumed run that finds it submits nothing.

What enters the fit: the **final validation loss of each completed run only**. Intermediate
checkpoints do not enter: on a cosine schedule a checkpoint at ``k/n_evals`` of the tokens is not
the loss of a shorter run (its learning rate has not annealed), and the law has no
schedule-aware term to model the difference; failed runs (timeouts, crashes) do not enter either
(censored: their partial curves are kept in the ledger and the report).

Units: the law's ``N`` is the 2026 non-embedding count of each run's own architecture
(:func:`~bayes_scaling.candidates2026.law_features`), so ``n_opt``, ``d_opt`` and the recommended
configuration's counts are one unit. The target: a run of ``target_hours`` B200-hours. Its
compute in the law's FLOPs convention is the tokens a large reference model trains in that time
at the runtime model's throughput times ``6 N``. Head dimension and intermediate ratio come from
the completed runs' residuals, the warmup fraction is the default 0.05 (the model prices warmup;
:func:`residual_choices`); then every target shape of that head dimension and ratio, at batch
128 and 256, gets the tokens that fit ``target_hours`` at
*its own* predicted throughput (one sd on the safe side), those whose training step does not fit
a B200's memory are excluded, and the candidate of lowest posterior mean log loss at its own
tokens is recommended (:func:`bayes_scaling.recommend2026.choose_target_config`); its predicted
loss is the posterior predictive of that exact configuration. The reference compute
:func:`target_law_flops` steers the acquisition and the history's ``N_opt`` only.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from bayes_scaling.acquisition import select_batch
from bayes_scaling.api2026.schemas import TrainingConfig
from bayes_scaling.candidates2026 import (
    best_by_residual,
    generate_training_candidates,
    initial_design_2026,
    law_features,
    law_run_config,
    price,
    training_config,
    training_key,
)
from bayes_scaling.count_family import family_2026
from bayes_scaling.errors import BayesScalingError, BudgetExceededError
from bayes_scaling.oracle import ExperimentOracle, ExperimentOutcome
from bayes_scaling.params2026 import count_params_2026
from bayes_scaling.recommend import Recommendation
from bayes_scaling.recommend2026 import TARGET_HEAD_DIMS, choose_target_config
from bayes_scaling.rng import numpy_generator
from bayes_scaling.runtime_model import RuntimeModel, run_flops
from bayes_scaling.session import fit_summary

__all__ = ["JobsLoopConfig", "JobsLoopResult", "jobs_backend", "residual_choices",
           "run_jobs_loop", "target_law_flops"]

logger = logging.getLogger(__name__)

_REFERENCE = dict(hidden_size=2048, num_layers=24, head_dim=64, intermediate_size=5504,
                  peak_learning_rate=3e-4, warmup_frac=0.05, batch_size=128, n_evals=16)


@dataclass(frozen=True, kw_only=True)
class JobsLoopConfig:
    """Settings of :func:`run_jobs_loop` (seconds are B200-seconds of the API's budget).

    Parameters
    ----------
    target_hours : float
        B200-hours of the run to plan (the course's target: 48).
    max_in_flight : int
        Most runs queued or running at once.
    planned_runs : int
        The pacing floor spreads the budget over about this many runs (design included).
    max_runs : int
        Safety bound on submissions.
    num_initial : int
        Size of the space-filling design.
    min_completed_to_fit : int
        Completed runs needed before the first fit.
    leftover_fraction : float
        Stop submitting when less than this fraction of the budget is left.
    max_run_fraction : float
        No single run may reserve more than this fraction of the budget.
    reservation_z : float
        ``max_runtime_seconds`` = runtime model median x exp(z sd) + 2 s.
    num_candidates : int
        Random candidates drawn per acquisition.
    poll_min, poll_max : float
        Wall seconds between polls: back off from ``poll_min`` by 1.5x to ``poll_max`` while
        nothing changes.
    num_warmup, num_samples, num_chains, final_num_warmup, final_num_samples, final_num_chains
        NUTS settings of the in-loop fits and of the final fit.
    """

    target_hours: float = 48.0
    max_in_flight: int = 4
    planned_runs: int = 40
    max_runs: int = 120
    num_initial: int = 8
    min_completed_to_fit: int = 4
    leftover_fraction: float = 0.02
    max_run_fraction: float = 0.15
    reservation_z: float = 3.0
    num_candidates: int = 3000
    poll_min: float = 0.2
    poll_max: float = 10.0
    num_warmup: int = 150
    num_samples: int = 150
    num_chains: int = 1
    final_num_warmup: int = 500
    final_num_samples: int = 1000
    final_num_chains: int = 4

    def __post_init__(self) -> None:
        for name in ("max_in_flight", "planned_runs", "max_runs", "num_initial",
                     "min_completed_to_fit", "num_candidates", "num_warmup", "num_samples",
                     "num_chains", "final_num_warmup", "final_num_samples", "final_num_chains"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        for name in ("target_hours", "reservation_z", "poll_min", "poll_max"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: expected a positive number, got {value!r}")
        for name in ("leftover_fraction", "max_run_fraction"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"{name}: expected a number in [0, 1), got {value!r}")


@dataclass(frozen=True, kw_only=True)
class JobsLoopResult:
    """What the loop did and what it recommends.

    Attributes
    ----------
    outcomes : list of ExperimentOutcome
        Every ended run (completed and failed), in submission order.
    posterior : object
        The final fit (on the completed runs' final losses).
    recommendation : Recommendation
        The law's choice with ``tokens``, ``predicted_loss``, ``target_flops`` and the 2026
        counts of :attr:`training_config`.
    training_config : TrainingConfig
        The complete configuration to train for ``target_hours``.
    predicted_seconds : float
        Its median predicted runtime.
    target_flops : float
        The target's compute in the law's convention.
    history : list of dict
        A summary after every fit.
    runtime : dict
        The runtime model's final coefficients.
    timings : dict
        Wall seconds in fits, acquisition, waiting and in all.
    seconds_committed : float
    max_in_flight_seen : int
    stop_reason : str
    """

    outcomes: list[ExperimentOutcome]
    posterior: Any
    recommendation: Any
    training_config: TrainingConfig
    predicted_seconds: float
    target_flops: float
    history: list[dict]
    runtime: dict
    timings: dict
    seconds_committed: float
    max_in_flight_seen: int
    stop_reason: str
    extra: dict = field(default_factory=dict)


def _reference() -> TrainingConfig:
    return training_config(**_REFERENCE, tokens=1.0, max_runtime_seconds=1.0)


def target_law_flops(runtime: RuntimeModel, hours: float) -> float:
    """The target's compute in the law's convention: ``6 N T`` of a large reference model.

    ``T`` is what it trains in ``hours`` at ``runtime``'s median throughput; ``N`` is its 2026
    non-embedding count (the law's unit, :data:`~bayes_scaling.candidates2026.LAW_FAMILY`).
    """
    ref = _reference()
    tokens = runtime.tokens_for_seconds(ref, hours * 3600.0)
    return 6.0 * float(count_params_2026(ref.architecture_config).non_embedding) * tokens


def jobs_backend(config: JobsLoopConfig):
    """The package's model backend with ``config``'s NUTS settings (in-loop and final fits)."""
    from bayes_scaling.loop import LoopConfig, default_backend

    return default_backend(LoopConfig.from_flat(
        num_warmup=config.num_warmup, num_samples=config.num_samples,
        num_chains=config.num_chains, final_num_warmup=config.final_num_warmup,
        final_num_samples=config.final_num_samples, final_num_chains=config.final_num_chains,
    ))


def _summary(posterior, target_flops: float, done: Sequence, seconds: float) -> dict:
    """A history row (``session.fit_summary``) plus the seconds committed.

    ``flops_used`` is the FLOP estimate of the completed runs the fit saw.
    """
    flops = float(sum(run_flops(o.config) for o in done))
    return {**fit_summary(posterior, target_flops, flops, len(done)),
            "seconds_committed": float(seconds), "target_flops": float(target_flops)}


class _Loop:
    def __init__(self, oracle: ExperimentOracle, config: JobsLoopConfig, backend, sleep):
        self.oracle, self.config, self.backend, self.sleep = oracle, config, backend, sleep
        self.runtime = RuntimeModel()
        self.timings = {"fit": 0.0, "acquisition": 0.0, "waiting": 0.0}
        self.history: list[dict] = []
        self.peak = 0

    def remaining(self) -> float:
        return self.oracle.budget_total - self.oracle.budget_committed()

    def completed(self) -> list[ExperimentOutcome]:
        return [o for o in self.oracle.outcomes() if o.state == "completed"]

    def fit(self, rng_key, *, final: bool = False):
        done = self.completed()
        features = law_features([o.config for o in done])
        loss = np.array([o.final_loss for o in done], np.float64)
        start = time.perf_counter()
        fit = self.backend.final_fit if final and self.backend.final_fit else self.backend.fit
        # In-loop fits are deliberately small (they only rank candidates): their sampler
        # diagnostics are noise, so only the final fit's warnings are shown.
        sampler_log = logging.getLogger("bayes_scaling.inference")
        level = sampler_log.level
        if not final:
            sampler_log.setLevel(logging.ERROR)
        try:
            return fit(rng_key, features, loss)
        finally:
            sampler_log.setLevel(level)
            self.timings["fit"] += time.perf_counter() - start

    def fits(self, cfg: TrainingConfig) -> bool:
        """Whether a new training (not bought before) whose reservation fits the run cap."""
        cap = min(self.remaining(), self.config.max_run_fraction * self.oracle.budget_total)
        return cfg.max_runtime_seconds <= cap and training_key(cfg) not in self.trainings()

    def trainings(self) -> set[str]:
        """Training keys of every submitted run (the ledger's, so a resume sees them too)."""
        done = [o.config for o in self.oracle.outcomes()]
        return {training_key(c) for c in done + list(self.oracle.in_flight())}

    def submit(self, cfg: TrainingConfig, why: str) -> bool:
        try:
            self.oracle.submit(cfg)
        except BudgetExceededError as exc:
            logger.info("not submitted (%s): %s", why, exc)
            return False
        arch = cfg.architecture_config
        logger.info(
            "submitted (%s): d=%d L=%d hd=%d f=%d lr=%.3g warmup=%.2f B=%d tokens=%.3g "
            "reserve %.1f s; %.0f s left",
            why, arch.hidden_size, arch.num_hidden_layers, arch.head_dim,
            arch.intermediate_size, cfg.optimizer_config.lr_scheduler.peak_value,
            cfg.optimizer_config.lr_scheduler.warmup_frac, cfg.train_batch_size,
            cfg.total_train_tokens, cfg.max_runtime_seconds, self.remaining(),
        )
        return True

    def acquire(self, rng_key, posterior, slots: int, n_submitted: int) -> list[TrainingConfig]:
        config = self.config
        start = time.perf_counter()
        try:
            remaining = self.remaining()
            cap = min(remaining, config.max_run_fraction * self.oracle.budget_total)
            cands = generate_training_candidates(
                numpy_generator(rng_key), config.num_candidates, self.runtime, max_reservation=cap,
                reservation_z=config.reservation_z,
            )
            if not cands:
                return []
            features = law_features(cands)
            mean = posterior.predict_mean(features)
            noise = posterior.noise_sd(features)
            target = target_law_flops(self.runtime, config.target_hours)
            g = np.log(np.asarray(posterior.optimum(target).n_params, np.float64))
            costs = np.asarray(features.flops, np.float64)
            seconds = self.runtime.seconds(cands)
            rate = float(np.sum(costs) / np.sum(seconds))
            picks, _, _, _ = select_batch(
                g, mean, noise, costs, remaining_flops=remaining * rate, batch_size=slots,
                planned_queries_left=config.planned_runs - n_submitted,
            )
            return [cands[i] for i in picks]
        finally:
            self.timings["acquisition"] += time.perf_counter() - start


def run_jobs_loop(
    rng_key,
    oracle: ExperimentOracle,
    config: JobsLoopConfig,
    *,
    backend=None,
    sleep: Callable[[float], None] = time.sleep,
) -> JobsLoopResult:
    """Spend ``oracle``'s seconds budget and recommend the ``target_hours`` configuration.

    Runs the oracle already holds (a resumed run) count: ended ones are data, in-flight ones are
    waited for, and the design's configurations are not submitted again.

    Raises
    ------
    BayesScalingError
        If no run completed (nothing to fit).
    """
    start = time.perf_counter()
    backend = backend or jobs_backend(config)
    loop = _Loop(oracle, config, backend, sleep)
    key_design, key = jax.random.split(rng_key)
    design = initial_design_2026(
        numpy_generator(key_design), config.num_initial, RuntimeModel(),
        budget_seconds=oracle.budget_total,
    )
    posterior, fitted_on, stop_reason, empty_draws = None, -1, None, 0
    wait = config.poll_min
    while True:
        new = oracle.poll()
        for outcome in new:
            logger.info("run %s %s: final loss %s, %s s", outcome.key, outcome.state,
                        outcome.final_loss, outcome.runtime_seconds)
        done = loop.completed()
        if len(done) != loop.runtime.n_fitted:
            loop.runtime.fit([o.config for o in done], [o.runtime_seconds for o in done])
        flying = oracle.in_flight()
        loop.peak = max(loop.peak, len(flying))
        n_submitted = len(flying) + len(oracle.outcomes())
        spent = loop.remaining() < config.leftover_fraction * oracle.budget_total
        if stop_reason == "budget spent" and not flying and not spent:
            stop_reason = None  # the last runs' refunds gave back enough to buy more
        if stop_reason is None:
            if n_submitted >= config.max_runs:
                stop_reason = "run limit reached (safety bound)"
            elif spent:
                stop_reason = "budget spent"
        free = config.max_in_flight - len(flying)
        if stop_reason is None and free > 0:
            if design:
                while design and free > 0:
                    cfg = price(design.pop(0), loop.runtime, reservation_z=config.reservation_z)
                    if loop.fits(cfg) and loop.submit(cfg, "initial design"):
                        free -= 1
            elif len(done) >= config.min_completed_to_fit and (
                not flying or free >= max(1, config.max_in_flight // 2)
            ):
                key, key_fit, key_acq = jax.random.split(key, 3)
                if len(done) > fitted_on:
                    posterior = loop.fit(key_fit)
                    fitted_on = len(done)
                    summary = _summary(posterior, target_law_flops(loop.runtime,
                                                                   config.target_hours),
                                       done, oracle.budget_committed())
                    loop.history.append(summary)
                    logger.info("fit on %d runs: N_opt %.3g [%.3g, %.3g], loss %.3f",
                                len(done), summary["n_opt_median"], *summary["n_opt_ci90"],
                                summary["loss_median"])
                picks = loop.acquire(key_acq, posterior, free, n_submitted)
                submitted = sum(loop.fits(c) and loop.submit(c, "acquisition") for c in picks)
                empty_draws = 0 if submitted else empty_draws + (not flying)
                if empty_draws >= 3:  # three fresh candidate draws found nothing affordable
                    stop_reason = "no affordable run left"
            elif not flying and len(done) < config.min_completed_to_fit:
                stop_reason = "too few runs completed"
        loop.peak = max(loop.peak, len(oracle.in_flight()))
        if stop_reason is not None and not oracle.in_flight():
            break
        before = time.perf_counter()
        sleep(wait)
        loop.timings["waiting"] += time.perf_counter() - before
        wait = config.poll_min if new else min(wait * 1.5, config.poll_max)
    done = loop.completed()
    if len(done) < 2:
        raise BayesScalingError(f"expected at least 2 completed runs to fit, got {len(done)}")
    key_final, _, key_pred = jax.random.split(key, 3)
    posterior = loop.fit(key_final, final=True)
    target = target_law_flops(loop.runtime, config.target_hours)
    loop.history.append({**_summary(posterior, target, done, oracle.budget_committed()),
                         "final": True})
    choices = residual_choices(posterior, done)
    family = family_2026(head_dim=choices["head_dim"],
                         intermediate_ratio=choices["intermediate_ratio"])
    choice = choose_target_config(
        posterior, loop.runtime, hours=config.target_hours, head_dim=choices["head_dim"],
        intermediate_ratio=choices["intermediate_ratio"], warmup_frac=choices["warmup_frac"],
    )
    final_cfg, seconds = choice.training_config, choice.predicted_seconds
    rec = _recommendation(key_pred, posterior, final_cfg)
    loop.timings["total"] = time.perf_counter() - start
    return JobsLoopResult(
        outcomes=oracle.outcomes(), posterior=posterior, recommendation=rec,
        training_config=final_cfg, predicted_seconds=float(seconds), target_flops=target,
        history=loop.history, runtime=loop.runtime.summary(), timings=loop.timings,
        seconds_committed=float(oracle.budget_committed()), max_in_flight_seen=loop.peak,
        stop_reason=stop_reason, extra={"residual_choices": choices,
                                        "recommend_family": family.as_dict(),
                                        "target_choice": choice.as_dict()},
    )


def residual_choices(posterior, done: Sequence[ExperimentOutcome]) -> dict:
    """Head dimension, intermediate ratio and warmup of the final config.

    The law has no term for the head dimension and the intermediate ratio beyond the parameter
    count (``N`` is the run's 2026 count, so a wider MLP counts as a bigger model): each is the
    value whose completed runs have the lowest median residual (observed minus posterior-median
    law loss) among values seen in at least 3 runs, the default (head dimension 64, ratio 8/3)
    unless another is better by more than 0.005 nats
    (:func:`~bayes_scaling.candidates2026.best_by_residual`); the head dimension only among
    :data:`~bayes_scaling.recommend2026.TARGET_HEAD_DIMS` (64 or 128, never the 32 that runs may
    explore: every target width has 64-wide heads). The warmup fraction is the default 0.05:
    the model has a term for it (:func:`bayes_scaling.law.warmup_penalty`), so its residuals
    are what the term leaves and choosing by them counts the effect twice (on a perturbed truth
    they picked no warmup, which the target then paid ~0.09 nats for), and 5% of a 48-hour run
    is far past the term's decay, as the other searched fractions are. Returns the three
    choices and, per knob, each value's median residual and run count (the warmup's too).
    """
    mean = posterior.predict_mean(law_features([o.config for o in done]))
    residual = np.array([o.final_loss for o in done]) - np.median(mean, axis=0)
    archs = [o.config.architecture_config for o in done]
    values = {
        "intermediate_ratio": ([round(a.intermediate_size / a.hidden_size, 2) for a in archs],
                               2.67),
        "head_dim": ([a.head_dim for a in archs], 64),
        "warmup_frac": ([o.config.optimizer_config.lr_scheduler.warmup_frac for o in done], 0.05),
    }
    out: dict = {"groups": {}}
    for name, (seen, default) in values.items():
        if name == "head_dim":  # runs explore 32 too, the recommendation keeps to 64 or 128
            allowed = [i for i, v in enumerate(seen) if v in TARGET_HEAD_DIMS]
            out[name] = best_by_residual([seen[i] for i in allowed],
                                         [residual[i] for i in allowed], default)
        elif name == "warmup_frac":  # priced by the model's warmup term: not from residuals
            out[name] = default
        else:
            out[name] = best_by_residual(seen, residual, default)
        groups: dict = {}
        for value, res in zip(seen, residual, strict=True):
            groups.setdefault(value, []).append(float(res))
        out["groups"][name] = {str(k): {"median_residual": float(np.median(v)), "runs": len(v)}
                               for k, v in sorted(groups.items())}
    return out


def _recommendation(rng_key, posterior, final_cfg: TrainingConfig) -> Recommendation:
    """The :class:`~bayes_scaling.recommend.Recommendation` view of the final configuration.

    ``target_flops`` is its ``6 N T`` (the law's convention), ``predicted_loss`` the posterior
    predictive of that exact configuration (``law_loss`` its mean under each draw), ``intervals``
    the per-draw optimal learning rate of its shape, batch and tokens.
    """
    features = law_features([final_cfg])
    arch = final_cfg.architecture_config
    counts = count_params_2026(arch)
    lr_draws = np.asarray(posterior.optimal_learning_rate(features)[:, 0], np.float64)
    return Recommendation(
        target_flops=float(law_run_config(final_cfg).train_flops),
        d_model=arch.hidden_size, num_layers=arch.num_hidden_layers,
        num_heads=arch.num_attention_heads, batch_size=final_cfg.train_batch_size,
        learning_rate=float(final_cfg.optimizer_config.lr_scheduler.peak_value),
        learning_rate_source="posterior" if np.isfinite(lr_draws).all() else "default",
        non_embedding_params=int(counts.non_embedding), total_params=int(counts.total),
        tokens=float(final_cfg.total_train_tokens),
        predicted_loss=posterior.sample_predictive(rng_key, features)[:, 0],
        shape_rule="expected_loss_at_target_hours",
        intervals={"learning_rate": lr_draws} if np.isfinite(lr_draws).all() else {},
        law_loss=np.asarray(posterior.predict_mean(features), np.float64)[:, 0],
    )

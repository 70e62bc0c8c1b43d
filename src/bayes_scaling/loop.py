"""Strategies that spend a FLOP budget on a training API, behind one interface.

:func:`run_loop` runs one of three strategies over a :class:`~bayes_scaling.oracle.LossOracle`
(this module never sees the HTTP client or the simulator):

- ``active``: a small space-filling design, then fit / acquire / query until the budget is
  (nearly) spent or the 90% interval of ``ln N_opt(target)`` is narrower than ``stop_ci_width``
  (``max_queries`` is only a safety bound). Each step scores thousands of candidate queries by
  the expected reduction of the posterior variance of ``ln N_opt(target)`` per FLOP, with a cost
  floor of ``remaining FLOPs / remaining planned queries`` (:mod:`bayes_scaling.acquisition`), so
  cheap runs are not free early on and the budget goes to the most informative affordable
  queries, large ones included, as the planned queries run out.
- ``isoflop-grid``: the fixed Chinchilla-style design most public solutions use, with its own
  power-law fits and recommendation (:mod:`bayes_scaling.isoflop_grid`).
- ``random``: random valid queries until the budget is spent, then the Bayesian fit.

The statistical model is reached through a :class:`ModelBackend` (featurize, fit, recommend), by
default the package's NUTS posterior, so tests can swap in a fake posterior.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from bayes_scaling.acquisition import AcquisitionConfig, select_batch
from bayes_scaling.candidates import CandidateConfig, generate_candidates, shape_for_n_params
from bayes_scaling.errors import BudgetExceededError, FailedQueryError, InvalidConfigError
from bayes_scaling.oracle import LossOracle, Observation
from bayes_scaling.space import LEARNING_RATE_RANGE, TRAIN_FLOPS, RunConfig

__all__ = [
    "STRATEGIES",
    "LoopConfig",
    "LoopResult",
    "ModelBackend",
    "QueryEvent",
    "check_budget",
    "default_backend",
    "initial_design",
    "minimum_budget",
    "run_loop",
]

logger = logging.getLogger(__name__)

STRATEGIES = ("active", "isoflop-grid", "random")


@dataclass(frozen=True, kw_only=True)
class LoopConfig:
    """What a strategy may spend and when it stops.

    Parameters
    ----------
    budget_flops : float
        FLOPs the strategy may spend (never more than the oracle's own budget).
    target_flops : float
        The compute of the run to plan.
    strategy : {"active", "isoflop-grid", "random"}
    max_queries : int
        Most paid queries: a safety bound, not the usual way to stop.
    planned_queries : int
        ``active`` paces its spending over this many queries (initial design included): the cost
        floor of a pick is ``remaining FLOPs / (planned_queries - queries so far)``, the whole
        remaining budget once the plan is used up.
    leftover_fraction : float
        ``active`` and ``random`` stop ("budget spent") once less than this fraction of the
        budget is left.
    stop_ci_width : float
        ``active`` stops once the 90% interval of ``ln N_opt(target)`` is narrower (0: never).
    num_initial : int
        Size of ``active``'s space-filling design.
    queries_per_fit : int
        ``active`` chooses this many queries per refit (greedy, conditioned on each other).
    num_warmup, num_samples, num_chains : int
        NUTS settings of the fits inside the loop (cheap: they only rank queries).
    final_num_warmup, final_num_samples, final_num_chains : int
        NUTS settings of the final fit that the recommendation and report use:
        ``NutsConfig.for_report()``'s 4 chains x (500 + 1000). On a default run's 44 runs,
        2 x (400 + 400) gave r-hat 1.010-1.017, 4 x (400 + 400) up to 1.016 and 4 x (400 + 800)
        1.003-1.013; most of the final fit's time is compiling the sampler, not sampling.
    candidates : CandidateConfig
    acquisition : AcquisitionConfig or None
        Static acquisition settings (None: :class:`AcquisitionConfig` defaults, no static floor;
        the dynamic pacing floor always applies).
    fit_baseline_posterior : bool
        ``isoflop-grid`` also fits the Bayesian model to its runs (for the report).
    num_bootstrap : int
        Bootstrap resamples of ``isoflop-grid``'s power-law fits.
    """

    budget_flops: float = 2e18
    target_flops: float = 1e19
    strategy: str = "active"
    max_queries: int = 120
    planned_queries: int = 40
    leftover_fraction: float = 0.02
    stop_ci_width: float = 0.0
    num_initial: int = 8
    queries_per_fit: int = 4
    num_warmup: int = 150
    num_samples: int = 150
    num_chains: int = 1
    final_num_warmup: int = 500
    final_num_samples: int = 1000
    final_num_chains: int = 4
    candidates: CandidateConfig = field(default_factory=CandidateConfig)
    acquisition: AcquisitionConfig | None = None
    fit_baseline_posterior: bool = True
    num_bootstrap: int = 200

    def __post_init__(self) -> None:
        for name in ("budget_flops", "target_flops"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ValueError(f"{name}: expected a positive number, got {value!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy: expected one of {STRATEGIES}, got {self.strategy!r}")
        for name in ("max_queries", "planned_queries", "queries_per_fit", "num_warmup",
                     "num_samples", "num_chains", "final_num_warmup", "final_num_samples",
                     "final_num_chains", "num_bootstrap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if isinstance(self.num_initial, bool) or not isinstance(self.num_initial, int) or (
            self.num_initial < 2
        ):
            raise ValueError(f"num_initial: expected an integer >= 2, got {self.num_initial!r}")
        if not (np.isfinite(self.stop_ci_width) and self.stop_ci_width >= 0):
            raise ValueError(f"stop_ci_width: expected a number >= 0, got {self.stop_ci_width!r}")
        if not 0 <= self.leftover_fraction < 1:
            raise ValueError(
                f"leftover_fraction: expected a number in [0, 1), got {self.leftover_fraction!r}"
            )

    def acquisition_config(self) -> AcquisitionConfig:
        """Return the static acquisition settings (the pacing floor is applied per pick)."""
        return self.acquisition if self.acquisition is not None else AcquisitionConfig()


@dataclass(frozen=True, kw_only=True)
class ModelBackend:
    """The statistical model as the loop uses it: three functions.

    ``featurize(configs) -> features``; ``fit(rng_key, features, loss) -> posterior`` (may keep a
    compiled sampler between calls); ``recommend(rng_key, posterior, target_flops)``;
    ``final_fit`` like ``fit`` with the final settings (None: ``fit`` again is not needed).
    """

    featurize: Callable[[Sequence[RunConfig]], Any]
    fit: Callable[..., Any]
    recommend: Callable[..., Any]
    final_fit: Callable[..., Any] | None = None


def default_backend(config: LoopConfig) -> ModelBackend:
    """Build the package's model: ``features_from_configs``, a NUTS ``Refitter``, ``recommend``."""
    from bayes_scaling.features import features_from_configs
    from bayes_scaling.inference import NutsConfig, Refitter
    from bayes_scaling.recommend import recommend

    nuts = NutsConfig(
        num_warmup=config.num_warmup, num_samples=config.num_samples, num_chains=config.num_chains
    )
    final = NutsConfig(
        num_warmup=config.final_num_warmup,
        num_samples=config.final_num_samples,
        num_chains=config.final_num_chains,
    )
    in_loop = Refitter(nuts=nuts)
    # Same settings: reuse the compiled sampler instead of compiling a second one.
    final_refitter = in_loop if final == nuts else Refitter(nuts=final)
    return ModelBackend(
        featurize=features_from_configs,
        fit=in_loop.fit,
        recommend=recommend,
        final_fit=final_refitter.fit,
    )


@dataclass(frozen=True, kw_only=True)
class QueryEvent:
    """One paid (or repeated) query, as reported to the progress callback."""

    index: int
    config: RunConfig
    loss: float
    reason: str
    score: float
    flops_used: float
    flops_left: float
    n_opt_ci90: tuple[float, float] | None


@dataclass(frozen=True, kw_only=True)
class LoopResult:
    """What a strategy did and what it concluded.

    Attributes
    ----------
    strategy : str
    observations : list of Observation
        Every answered query, in the order paid.
    posterior : object or None
        The final Bayesian posterior (None when the strategy does not fit one).
    recommendation : object
        The configuration to train at the target (``recommend.Recommendation``).
    history : list of dict
        After every fit: ``flops_used``, ``n_runs``, ``n_opt_median``, ``n_opt_ci90``,
        ``n_opt_ci90_ln_width``, ``g_var`` (posterior variance of ``ln N_opt``),
        ``loss_median``, ``loss_ci90``, ``loss_ci90_width``.
    timings : dict of str to float
        Seconds spent in ``fit`` (all fits), ``final_fit`` (the part of ``fit`` spent in the
        final fit), ``acquisition``, ``query`` and ``total`` (wall clock), and the same with a
        ``cpu_`` prefix (process CPU seconds, all threads: robust to other jobs on the machine).
    flops_used : float
    stop_reason : str
    extra : dict
        Strategy-specific results (``isoflop-grid``'s fits).
    """

    strategy: str
    observations: list[Observation]
    posterior: Any
    recommendation: Any
    history: list[dict]
    timings: dict[str, float]
    flops_used: float
    stop_reason: str
    extra: dict = field(default_factory=dict)


class _Clock:
    """Wall-clock and process CPU seconds per part (CPU time is robust to a shared machine)."""

    def __init__(self) -> None:
        self.seconds = {"fit": 0.0, "final_fit": 0.0, "acquisition": 0.0, "query": 0.0}
        self.cpu = dict.fromkeys(self.seconds, 0.0)

    def timed(self, name: str, fn, *args, **kwargs):
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            self.seconds[name] += time.perf_counter() - start
            self.cpu[name] += time.process_time() - start_cpu


def _summary(posterior, target_flops: float, flops_used: float, n_runs: int) -> dict:
    optimum = posterior.optimum(target_flops)
    log_n = np.log(np.asarray(optimum.n_params, np.float64))
    loss = np.asarray(optimum.loss, np.float64)
    lo, hi = np.quantile(log_n, [0.05, 0.95])
    loss_lo, loss_hi = np.quantile(loss, [0.05, 0.95])
    return {
        "flops_used": float(flops_used),
        "n_runs": int(n_runs),
        "n_opt_median": float(np.exp(np.median(log_n))),
        "n_opt_ci90": [float(np.exp(lo)), float(np.exp(hi))],
        "n_opt_ci90_ln_width": float(hi - lo),
        "g_var": float(np.var(log_n, ddof=1)),
        "loss_median": float(np.median(loss)),
        "loss_ci90": [float(loss_lo), float(loss_hi)],
        "loss_ci90_width": float(loss_hi - loss_lo),
    }


def _clip_learning_rate(value: float) -> float:
    low, high = LEARNING_RATE_RANGE
    return float(f"{min(max(value, low), high):.4g}")


def initial_design(rng_key, *, budget_flops: float, num_initial: int) -> list[RunConfig]:
    """Build a small space-filling design: compute, size and learning rate stratified.

    Computes cycle over 1e15..3e16 (at most about 5% of a 2e18 budget in all), sizes put the
    tokens-per-parameter ratio on a stratified log grid in [4, 200] around Chinchilla's 20,
    learning rates stratified over the API's log range, batch sizes alternate.
    """
    levels = [c for c in TRAIN_FLOPS if 1e15 <= c <= 3e16]
    key_ratio, key_lr = jax.random.split(rng_key)
    n = num_initial
    u_ratio = (np.asarray(jax.random.permutation(key_ratio, n)) + 0.5) / n
    u_lr = (np.asarray(jax.random.permutation(key_lr, n)) + 0.5) / n
    low, high = LEARNING_RATE_RANGE
    design = []
    spent = 0.0
    for i in range(n):
        flops = levels[i % len(levels)]
        if spent + flops > 0.1 * budget_flops:
            flops = levels[0]
        ratio = float(np.exp(np.log(4.0) + u_ratio[i] * np.log(200.0 / 4.0)))
        n_params = np.sqrt(flops / (6.0 * ratio))
        d_model, num_layers, num_heads = shape_for_n_params(n_params)
        lr = _clip_learning_rate(float(np.exp(np.log(low) + u_lr[i] * np.log(high / low))))
        design.append(
            RunConfig(
                d_model=d_model,
                num_layers=num_layers,
                num_heads=num_heads,
                batch_size=(128, 256)[i % 2],
                learning_rate=lr,
                train_flops=int(flops),
            )
        )
        spent += flops
    return design


def minimum_budget(config: LoopConfig) -> float:
    """Return the smallest budget ``config.strategy``'s design needs, in FLOPs.

    ``active`` and ``random`` need ``num_initial`` runs of at least 1e15 FLOPs (the initial
    design's cheapest level) for the first fit; ``isoflop-grid`` needs its smallest full grid
    (:func:`bayes_scaling.isoflop_grid.minimum_grid_budget`).
    """
    if config.strategy == "isoflop-grid":
        from bayes_scaling.isoflop_grid import minimum_grid_budget

        return minimum_grid_budget()
    return float(config.num_initial * min(c for c in TRAIN_FLOPS if c >= 1e15))


def check_budget(oracle: LossOracle, config: LoopConfig) -> None:
    """Refuse, before anything is paid, a budget too small for the strategy's design.

    Raises
    ------
    InvalidConfigError
        One line naming the minimum.
    """
    needed = minimum_budget(config)
    budget = min(float(config.budget_flops), float(oracle.budget_flops))
    if budget < needed:
        raise InvalidConfigError(
            f"budget: the {config.strategy} strategy needs at least {needed:g} FLOPs, "
            f"got {budget:g}"
        )
    left = budget - float(oracle.flops_used())
    if not oracle.observations() and left < needed:
        raise InvalidConfigError(
            f"budget: the {config.strategy} strategy needs at least {needed:g} FLOPs, "
            f"got {left:g} left of {budget:g}"
        )


class _RerouteToDebug(logging.Filter):
    """Drop warnings of a logger and log them again at DEBUG on this module's logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            logger.debug("in-loop fit: %s", record.getMessage())
            return False
        return True


@contextlib.contextmanager
def _in_loop_diagnostics_at_debug():
    """Demote the sampler's diagnostic warnings while an in-loop fit runs.

    The in-loop fits are deliberately small (one chain, few draws): they only rank queries, so
    "r_hat needs at least 2 chains" and low-ESS warnings after each of them are noise. The final
    fit, which goes into the report, keeps its warnings.
    """
    inference_logger = logging.getLogger("bayes_scaling.inference")
    reroute = _RerouteToDebug()
    inference_logger.addFilter(reroute)
    try:
        yield
    finally:
        inference_logger.removeFilter(reroute)


class _Runner:
    """Shared bookkeeping of one strategy run: budget, queries, progress, timings."""

    def __init__(self, oracle: LossOracle, config: LoopConfig, callback) -> None:
        self.oracle = oracle
        self.config = config
        self.callback = callback
        self.clock = _Clock()
        self.budget = min(float(config.budget_flops), float(oracle.budget_flops))
        self.paid = {o.config.key(): o.loss for o in oracle.observations()}
        self.failed: dict[tuple, RunConfig] = {}  # charged, no usable loss: never asked again
        self.n_queries = len(self.paid)
        self.last_ci: tuple[float, float] | None = None

    def remaining(self) -> float:
        return self.budget - float(self.oracle.flops_used())

    def can_afford(self, cfg: RunConfig) -> bool:
        return cfg.key() in self.paid or cfg.train_flops <= self.remaining() + 1e-6

    def query(self, cfg: RunConfig, *, reason: str, score: float = float("nan")) -> bool:
        """Query unless unaffordable or over the query limit; True if answered."""
        repeat = cfg.key() in self.paid
        if cfg.key() in self.failed or not repeat and (
            self.n_queries >= self.config.max_queries or not self.can_afford(cfg)
        ):
            return False
        try:
            loss = self.clock.timed("query", self.oracle.query, cfg)
        except BudgetExceededError:
            logger.info("query refused over budget: %s", cfg)
            return False
        except FailedQueryError as exc:  # the oracle warned when it was paid
            logger.info("skipped: %s", exc)
            self.failed[cfg.key()] = cfg
            self.n_queries += 1
            return False
        if not repeat:
            self.paid[cfg.key()] = loss
            self.n_queries += 1
        used = float(self.oracle.flops_used())
        why = reason if math.isnan(score) else f"{reason}, score {score:.3g}"
        logger.info(
            "query %d%s: d_model=%d num_layers=%d num_heads=%d bs=%d lr=%.3g flops=%.0e -> "
            "loss %.4f (%s); %.3g FLOPs left",
            self.n_queries, " (repeat, free)" if repeat else "", cfg.d_model, cfg.num_layers,
            cfg.num_heads, cfg.batch_size, cfg.learning_rate, cfg.train_flops, loss, why,
            self.budget - used,
        )
        if self.callback is not None:
            self.callback(
                QueryEvent(
                    index=self.n_queries, config=cfg, loss=float(loss), reason=reason,
                    score=float(score), flops_used=used, flops_left=self.budget - used,
                    n_opt_ci90=self.last_ci,
                )
            )
        return True

    def observations(self) -> list[Observation]:
        return list(self.oracle.observations())

    def fit(self, rng_key, backend: ModelBackend, *, final: bool = False):
        obs = self.observations()
        features = backend.featurize([o.config for o in obs])
        loss = np.array([o.loss for o in obs], np.float64)
        if final:
            fit = backend.final_fit if backend.final_fit is not None else backend.fit
            before, before_cpu = self.clock.seconds["fit"], self.clock.cpu["fit"]
            try:
                return self.clock.timed("fit", fit, rng_key, features, loss)
            finally:
                self.clock.seconds["final_fit"] += self.clock.seconds["fit"] - before
                self.clock.cpu["final_fit"] += self.clock.cpu["fit"] - before_cpu
        with _in_loop_diagnostics_at_debug():
            return self.clock.timed("fit", backend.fit, rng_key, features, loss)

    def final_fit(self, rng_key, backend: ModelBackend, posterior, history: list[dict]):
        """Refit with the final settings (when the backend has them) and log the summary."""
        if backend.final_fit is None:
            return posterior
        posterior = self.fit(rng_key, backend, final=True)
        summary = _summary(posterior, self.config.target_flops, self.oracle.flops_used(),
                           len(self.paid))
        _log_fit(summary)
        history.append({**summary, "final": True})
        return posterior


def _log_fit(summary: dict) -> None:
    logger.info(
        "fit on %d runs (%.3g FLOPs): N_opt %.3g, 90%% [%.3g, %.3g] (ln-width %.2f); "
        "loss %.3f [%.3f, %.3f]",
        summary["n_runs"], summary["flops_used"], summary["n_opt_median"],
        *summary["n_opt_ci90"], summary["n_opt_ci90_ln_width"], summary["loss_median"],
        *summary["loss_ci90"],
    )


def _run_active(rng_key, runner: _Runner, backend: ModelBackend) -> tuple[Any, list, str]:
    key_final, key = jax.random.split(rng_key)
    posterior, history, reason = _active_steps(key, runner, backend)
    return runner.final_fit(key_final, backend, posterior, history), history, reason


def _active_steps(rng_key, runner: _Runner, backend: ModelBackend) -> tuple[Any, list, str]:
    config = runner.config
    key_design, key = jax.random.split(rng_key)
    for cfg in initial_design(
        key_design, budget_flops=runner.budget, num_initial=config.num_initial
    ):
        runner.query(cfg, reason="initial design")
    history: list[dict] = []
    acq = config.acquisition_config()
    while True:
        key, key_fit, key_cand = jax.random.split(key, 3)
        posterior = runner.fit(key_fit, backend)
        summary = _summary(
            posterior, config.target_flops, runner.oracle.flops_used(), len(runner.paid)
        )
        history.append(summary)
        runner.last_ci = tuple(summary["n_opt_ci90"])
        _log_fit(summary)
        if config.stop_ci_width and summary["n_opt_ci90_ln_width"] < config.stop_ci_width:
            return posterior, history, "interval narrower than stop width"
        if runner.n_queries >= config.max_queries:
            return posterior, history, "query limit reached (safety bound)"
        remaining = runner.remaining()
        if remaining < max(min(TRAIN_FLOPS), config.leftover_fraction * runner.budget):
            return posterior, history, "budget spent"
        picks = runner.clock.timed(
            "acquisition", _acquire, key_cand, posterior, runner, backend, acq
        )
        if not picks:
            return posterior, history, "no affordable query left"
        for cfg, score, reduction, floor in picks:
            runner.query(
                cfg,
                reason=f"expected var reduction {reduction:.3g} of {summary['g_var']:.3g}, "
                f"priced at {max(cfg.train_flops, floor):.2g} FLOPs (floor {floor:.2g})",
                score=score,
            )


def _acquire(rng_key, posterior, runner: _Runner, backend: ModelBackend, acq: AcquisitionConfig):
    config = runner.config
    remaining = runner.remaining()
    focus = {}
    for flops in TRAIN_FLOPS:
        if flops <= remaining:
            n_opt = np.asarray(posterior.optimum(float(flops)).n_params, np.float64)
            focus[int(flops)] = float(np.exp(np.median(np.log(n_opt))))
    candidates = generate_candidates(
        rng_key,
        remaining_flops=remaining,
        paid=[o.config for o in runner.observations()] + list(runner.failed.values()),
        focus_n_params=focus,
        config=config.candidates,
    )
    if not candidates:
        return []
    features = backend.featurize(candidates)
    mean = np.asarray(posterior.predict_mean(features), np.float64)
    noise = np.asarray(posterior.noise_sd(features), np.float64)
    g = np.log(np.asarray(posterior.optimum(config.target_flops).n_params, np.float64))
    costs = np.array([c.train_flops for c in candidates], np.float64)
    slots = min(config.queries_per_fit, config.max_queries - runner.n_queries)
    picks, scores, reductions, floors = select_batch(
        g, mean, noise, costs, remaining_flops=remaining, batch_size=slots,
        planned_queries_left=config.planned_queries - runner.n_queries, config=acq,
    )
    logger.debug("scored %d candidates; picked %s", len(candidates), picks)
    return [
        (candidates[i], s, r, f)
        for i, s, r, f in zip(picks, scores, reductions, floors, strict=True)
    ]


def _run_random(rng_key, runner: _Runner, backend: ModelBackend) -> tuple[Any, list, str]:
    config = runner.config
    key_draw, key_fit = jax.random.split(rng_key)
    pool = generate_candidates(
        key_draw,
        remaining_flops=runner.budget,
        config=CandidateConfig(num_random=20 * config.max_queries + 200, num_focus=0),
    )
    for cfg in pool:
        if runner.n_queries >= config.max_queries or runner.remaining() < max(
            min(TRAIN_FLOPS), config.leftover_fraction * runner.budget
        ):
            break
        if runner.can_afford(cfg):
            runner.query(cfg, reason="random")
    posterior = runner.fit(key_fit, backend, final=True)
    summary = _summary(posterior, config.target_flops, runner.oracle.flops_used(),
                       len(runner.paid))
    _log_fit(summary)
    return posterior, [summary], "budget spent"


def run_loop(
    rng_key,
    oracle: LossOracle,
    config: LoopConfig,
    *,
    backend: ModelBackend | None = None,
    callback: Callable[[QueryEvent], None] | None = None,
) -> LoopResult:
    """Spend the budget with ``config.strategy`` and return what it found.

    Observations the oracle already holds (a resumed run) count as paid: repeats are free and
    the budget left is the oracle's.

    Parameters
    ----------
    rng_key : jax.Array
    oracle : LossOracle
    config : LoopConfig
    backend : ModelBackend, optional
        Defaults to :func:`default_backend` (NUTS); the ``isoflop-grid`` strategy only uses it
        for a Bayesian fit of its runs reported alongside its own recommendation.
    callback : callable, optional
        Called with a :class:`QueryEvent` after every answered query.
    """
    check_budget(oracle, config)
    start, start_cpu = time.perf_counter(), time.process_time()
    if backend is None and (config.strategy != "isoflop-grid" or config.fit_baseline_posterior):
        backend = default_backend(config)
    runner = _Runner(oracle, config, callback)
    key_run, key_rec = jax.random.split(rng_key)
    extra: dict = {}
    if config.strategy == "active":
        posterior, history, reason = _run_active(key_run, runner, backend)
        recommendation = backend.recommend(key_rec, posterior, config.target_flops)
    elif config.strategy == "random":
        posterior, history, reason = _run_random(key_run, runner, backend)
        recommendation = backend.recommend(key_rec, posterior, config.target_flops)
    else:
        from bayes_scaling.isoflop_grid import run_isoflop_grid

        posterior, history, reason, recommendation, extra = run_isoflop_grid(
            key_run, runner, backend
        )
    timings = dict(runner.clock.seconds)
    timings["total"] = time.perf_counter() - start
    timings.update({f"cpu_{name}": value for name, value in runner.clock.cpu.items()})
    timings["cpu_total"] = time.process_time() - start_cpu
    logger.info(
        "%s done (%s): %d runs, %.3g FLOPs; time fit %.1fs, acquisition %.1fs, query %.1fs",
        config.strategy, reason, len(runner.paid), oracle.flops_used(), timings["fit"],
        timings["acquisition"], timings["query"],
    )
    return LoopResult(
        strategy=config.strategy,
        observations=runner.observations(),
        posterior=posterior,
        recommendation=recommendation,
        history=history,
        timings=timings,
        flops_used=float(oracle.flops_used()),
        stop_reason=reason,
        extra=extra,
    )

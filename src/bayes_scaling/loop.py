"""Strategies that spend a FLOP budget on a training API, behind one interface.

:func:`run_loop` runs one of three strategies over a :class:`~bayes_scaling.oracle.LossOracle`
(this module never sees the HTTP client or the simulator):

- ``active``: a small space-filling design, then fit / acquire / query until the budget is
  (nearly) spent or the 90% interval of ``ln N_opt(target)`` is narrower than ``stop_ci_width``
  (``max_queries`` is only a safety bound). Each step scores thousands of candidate queries by
  the expected reduction of posterior uncertainty at the target per FLOP, with a cost floor of
  ``remaining FLOPs / remaining planned queries`` (:mod:`bayes_scaling.acquisition`), so cheap
  runs are not free early on and the budget goes to the most informative affordable queries,
  large ones included, as the planned queries run out. ``LoopConfig.criterion`` says which
  uncertainty: ``"decision"`` (the default) the decision risk of :mod:`bayes_scaling.decision`,
  the variance of ``ln N_opt(target)``, of ``ln lr*`` and of the predicted loss, each weighted by
  what its error costs at the target; ``"n-opt"`` the variance of ``ln N_opt(target)`` alone, the
  criterion DESIGN.md section 1 names. ``decision`` is the default because the recommendation
  needs the learning rate too and ``n-opt`` gives it no value: each posterior draw's ``N_opt`` is
  taken at that draw's own ``lr*``, so a query that only pins ``lr*`` scores zero. On 24 random
  truths x 2 seeds at 2e18 FLOPs (issue 7; ``experiments/results/random_truths_*.md``)
  ``decision``'s worst regret is 0.014 nats and its median ``|ln lr_rec / lr*|`` 0.19-0.22 on each
  set of 8, against ``n-opt``'s 0.139 and 0.21-0.31. ``ActiveConfig.budget_plan``
  ``"c-optimal"`` buys only from the support of the cost-constrained c-optimal design for the
  remaining budget, re-solved after every refit (:func:`bayes_scaling.design.plan_support`).
- ``isoflop-grid``: the fixed Chinchilla-style design most public solutions use, with its own
  power-law fits and recommendation (:mod:`bayes_scaling.isoflop_grid`).
- ``random``: random valid queries until the budget is spent, then the Bayesian fit.

After every strategy with a Bayesian posterior, the optimal-design yardstick
(:func:`bayes_scaling.design.design_yardstick`: the best achievable sd of ``ln N_opt(target)`` for
the budget, with every run priced at least ``budget / planned_queries``, and the design
efficiency of what was bought) goes into ``LoopResult.extra``.

Every strategy runs through a :class:`~bayes_scaling.session.Session` (the budget is asked of
the oracle, every refusal is logged) and returns a :class:`~bayes_scaling.session.StrategyResult`.
The statistical model is reached through a :class:`ModelBackend` (featurize, fit, recommend), by
default the package's NUTS posterior, so tests can swap in a fake posterior.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import jax
import numpy as np

from bayes_scaling.acquisition import AcquisitionConfig, pacing_floor, select_batch
from bayes_scaling.candidates import CandidateConfig, generate_candidates, shape_for_n_params
from bayes_scaling.decision import DecisionConfig, decision_risk
from bayes_scaling.design import design_yardstick, parameter_draws, plan_support, summarize_split
from bayes_scaling.errors import InvalidConfigError
from bayes_scaling.inference import NutsConfig
from bayes_scaling.isoflop_grid import IsoflopGridConfig
from bayes_scaling.oracle import LossOracle, Observation
from bayes_scaling.session import QueryEvent, Session, StrategyResult
from bayes_scaling.space import LEARNING_RATE_RANGE, TRAIN_FLOPS, RunConfig

__all__ = [
    "STRATEGIES",
    "BUDGET_PLANS",
    "CRITERIA",
    "ActiveConfig",
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
#: Acquisition criteria of ``active``: ``decision`` (the decision risk of
#: :mod:`bayes_scaling.decision`, the default) and ``n-opt`` (variance of ln N_opt(target), the
#: criterion DESIGN.md section 1 names).
CRITERIA = ("n-opt", "decision")
#: Budget plans of ``active``: ``greedy`` (the pacing floor only) and ``c-optimal``.
BUDGET_PLANS = ("greedy", "c-optimal")


def _check_int(owner: object, names: Sequence[str], minimum: int) -> None:
    for name in names:
        value = getattr(owner, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class ActiveConfig:
    """Settings of the ``active`` strategy.

    Parameters
    ----------
    planned_queries : int
        ``active`` paces its spending over this many queries (initial design included): the cost
        floor of a pick is ``remaining FLOPs / (planned_queries - queries so far)``, the whole
        remaining budget once the plan is used up.
    stop_ci_width : float
        Stop once the 90% interval of ``ln N_opt(target)`` is narrower (0: never).
    num_initial : int
        Size of the space-filling design.
    queries_per_fit : int
        Queries chosen per refit (greedy, conditioned on each other).
    candidates : CandidateConfig
    acquisition : AcquisitionConfig
        Static acquisition settings (defaults: no static floor; the dynamic pacing floor always
        applies).
    budget_plan : {"greedy", "c-optimal"}
        ``greedy`` (default): every pick is the best score per floored FLOP among all candidates.
        ``c-optimal``: after every refit, solve the cost-constrained c-optimal design of
        ``ln N_opt(target)`` for the remaining budget over the candidates (each priced at least
        the pacing floor) under the current posterior, and pick only from its support (which
        compute levels, sizes and learning rates the whole remaining budget is best spent on),
        so early picks do not spend what the plan needs later.
    decision : DecisionConfig
        Settings of the ``decision`` criterion.
    """

    planned_queries: int = 40
    stop_ci_width: float = 0.0
    num_initial: int = 8
    queries_per_fit: int = 4
    candidates: CandidateConfig = field(default_factory=CandidateConfig)
    acquisition: AcquisitionConfig = field(default_factory=AcquisitionConfig)
    budget_plan: str = "greedy"
    decision: DecisionConfig = field(default_factory=DecisionConfig)

    def __post_init__(self) -> None:
        _check_int(self, ("planned_queries", "queries_per_fit"), 1)
        if self.budget_plan not in BUDGET_PLANS:
            raise ValueError(f"budget_plan: expected one of {BUDGET_PLANS}, "
                             f"got {self.budget_plan!r}")
        _check_int(self, ("num_initial",), 2)
        if not (np.isfinite(self.stop_ci_width) and self.stop_ci_width >= 0):
            raise ValueError(f"stop_ci_width: expected a number >= 0, got {self.stop_ci_width!r}")


def _in_loop_nuts() -> NutsConfig:
    return NutsConfig(num_warmup=150, num_samples=150, num_chains=1)


@dataclass(frozen=True, kw_only=True)
class LoopConfig:
    """What a strategy may spend, when it stops, and the settings of its parts.

    Parameters
    ----------
    budget_flops : float
        The FLOP budget to open the oracle with (the CLI and the experiments do). The loop itself
        asks the oracle, the one authority on the budget; :func:`run_loop` refuses an oracle
        whose budget differs.
    target_flops : float
        The compute of the run to plan.
    strategy : {"active", "isoflop-grid", "random"}
    criterion : {"n-opt", "decision"}
        ``active``'s acquisition criterion (:data:`CRITERIA`); default ``decision`` (the module
        docstring says why).
    max_queries : int
        Most paid queries: a safety bound, not the usual way to stop.
    leftover_fraction : float
        ``active`` and ``random`` stop ("budget spent") once less than this fraction of the
        budget is left.
    nuts : NutsConfig
        NUTS settings of the fits inside the loop (cheap: they only rank queries): 1 chain of
        150 warmup + 150 draws.
    final_nuts : NutsConfig
        NUTS settings of the final fit that the recommendation and report use:
        ``NutsConfig.for_report()``'s 4 chains x (500 + 1000). On a default run's 44 runs,
        2 x (400 + 400) gave r-hat 1.010-1.017, 4 x (400 + 400) up to 1.016 and 4 x (400 + 800)
        1.003-1.013; most of the final fit's time is compiling the sampler, not sampling.
    active : ActiveConfig
    isoflop_grid : IsoflopGridConfig
    """

    budget_flops: float = 2e18
    target_flops: float = 1e19
    strategy: str = "active"
    criterion: str = "decision"
    max_queries: int = 120
    leftover_fraction: float = 0.02
    nuts: NutsConfig = field(default_factory=_in_loop_nuts)
    final_nuts: NutsConfig = field(default_factory=NutsConfig.for_report)
    active: ActiveConfig = field(default_factory=ActiveConfig)
    isoflop_grid: IsoflopGridConfig = field(default_factory=IsoflopGridConfig)

    def __post_init__(self) -> None:
        for name in ("budget_flops", "target_flops"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ValueError(f"{name}: expected a positive number, got {value!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy: expected one of {STRATEGIES}, got {self.strategy!r}")
        if self.criterion not in CRITERIA:
            raise ValueError(f"criterion: expected one of {CRITERIA}, got {self.criterion!r}")
        _check_int(self, ("max_queries",), 1)
        if not 0 <= self.leftover_fraction < 1:
            raise ValueError(
                f"leftover_fraction: expected a number in [0, 1), got {self.leftover_fraction!r}"
            )

    @classmethod
    def from_flat(cls, **settings: Any) -> LoopConfig:
        """Build a config from flat settings, as the CLI flags and the experiments name them.

        Top-level fields pass through; ``planned_queries``, ``stop_ci_width``, ``num_initial``,
        ``queries_per_fit``, ``candidates``, ``acquisition``, ``budget_plan`` and ``decision`` go
        to :class:`ActiveConfig`;
        ``num_warmup``, ``num_samples``, ``num_chains`` to ``nuts`` and ``final_num_*`` to
        ``final_nuts`` (each over its default); ``fit_baseline_posterior`` and ``num_bootstrap``
        to :class:`IsoflopGridConfig`; ``query_head_dim`` to the candidates'
        :class:`~bayes_scaling.candidates.CandidateConfig` ``head_dim``.

        Raises
        ------
        ValueError
            On an unknown setting or an invalid value.
        """
        defaults = cls()
        parts: dict[str, dict] = {part: {} for part in _PARTS}
        top = {}
        if "query_head_dim" in settings:
            settings = dict(settings)
            head_dim = settings.pop("query_head_dim")
            base = settings.get("candidates", defaults.active.candidates)
            settings["candidates"] = dataclasses.replace(base, head_dim=head_dim)
        for name, value in settings.items():
            part = next((p for p, names in _PARTS.items() if name in names), None)
            if part is not None:
                parts[part][_PARTS[part][name]] = value
            elif name in {f.name for f in dataclasses.fields(cls)} - set(_PARTS):
                top[name] = value
            else:
                raise ValueError(f"settings: unknown name {name!r}")
        built = {part: dataclasses.replace(getattr(defaults, part), **values)
                 for part, values in parts.items() if values}
        return cls(**top, **built)

    def budget_spent(self, session: Session) -> bool:
        """Whether less than the smallest API compute or ``leftover_fraction`` is left."""
        return session.remaining() < max(min(TRAIN_FLOPS), self.leftover_fraction * session.budget)


#: Flat setting names of :meth:`LoopConfig.from_flat`: part -> {flat name: field of the part}.
_PARTS = {
    "active": {name: name for name in ("planned_queries", "stop_ci_width", "num_initial",
                                       "queries_per_fit", "candidates", "acquisition",
                                       "budget_plan", "decision")},
    "nuts": {name: name for name in ("num_warmup", "num_samples", "num_chains")},
    "final_nuts": {f"final_{name}": name for name in ("num_warmup", "num_samples",
                                                      "num_chains")},
    "isoflop_grid": {name: name for name in ("fit_baseline_posterior", "num_bootstrap")},
}


@dataclass(frozen=True, kw_only=True)
class ModelBackend:
    """The statistical model as the loop uses it: three functions.

    ``featurize(configs) -> features``; ``fit(rng_key, features, loss) -> posterior`` (may keep a
    compiled sampler between calls); ``recommend(rng_key, posterior, target_flops)``;
    ``final_fit`` like ``fit`` with the final settings (None: ``fit`` again is not needed).
    Posteriors implement :class:`bayes_scaling.posterior.PosteriorQueries`.
    """

    featurize: Callable[[Sequence[RunConfig]], Any]
    fit: Callable[..., Any]
    recommend: Callable[..., Any]
    final_fit: Callable[..., Any] | None = None


def default_backend(config: LoopConfig, progress=None) -> ModelBackend:
    """Build the package's model: ``features_from_configs``, NUTS ``Refitter``s, ``recommend``.

    ``progress`` (a :class:`bayes_scaling.progress.Progress`, optional) shows a bar per fit.
    """
    from bayes_scaling.features import features_from_configs
    from bayes_scaling.inference import Refitter
    from bayes_scaling.recommend import recommend

    in_loop = Refitter(nuts=config.nuts, progress=progress, label="in-loop fit")
    # Same settings: reuse the compiled sampler instead of compiling a second one.
    final_fit = (partial(in_loop.fit, label="final fit") if config.final_nuts == config.nuts
                 else Refitter(nuts=config.final_nuts, progress=progress, label="final fit").fit)
    return ModelBackend(
        featurize=features_from_configs,
        fit=in_loop.fit,
        recommend=recommend,
        final_fit=final_fit,
    )


@dataclass(frozen=True, kw_only=True)
class LoopResult:
    """What a strategy did and what it concluded.

    Attributes
    ----------
    strategy : str
    observations : list of Observation
        Every answered query, in the order paid.
    posterior : PosteriorQueries or None
        The final Bayesian posterior (None when the strategy does not fit one).
    recommendation : object
        The configuration to train at the target (``recommend.Recommendation``).
    history : list of dict
        After every fit: ``flops_used``, ``n_runs``, ``n_opt_median``, ``n_opt_ci90``,
        ``n_opt_ci90_ln_width``, ``g_var`` (posterior variance of ``ln N_opt``),
        ``loss_median``, ``loss_ci90``, ``loss_ci90_width``.
    timings : dict of str to float
        Seconds spent in ``fit`` (all fits), ``final_fit`` (the part of ``fit`` spent in the
        final fit), ``acquisition``, ``query``, ``design`` (the yardstick) and ``total`` (wall
        clock), and the same with a ``cpu_`` prefix (process CPU seconds, all threads: robust
        to other jobs on the machine).
    flops_used : float
    stop_reason : str
    extra : dict
        Strategy-specific results (``isoflop-grid``'s fits) and, with a posterior, the keys of
        :func:`bayes_scaling.design.design_yardstick` (``oracle_sd_ln_n_opt``,
        ``design_efficiency``, ...).
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
    return float(config.active.num_initial * min(c for c in TRAIN_FLOPS if c >= 1e15))


def check_budget(oracle: LossOracle, config: LoopConfig) -> None:
    """Refuse, before anything is paid, a budget too small for the strategy's design.

    The budget is the oracle's (the one authority; :func:`run_loop` has checked that
    ``config.budget_flops`` names the same).

    Raises
    ------
    InvalidConfigError
        One line naming the minimum.
    """
    needed = minimum_budget(config)
    budget = float(oracle.budget_flops)
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


def _run_active(rng_key, key_rec, session: Session, backend: ModelBackend,
                config: LoopConfig) -> StrategyResult:
    key_final, key = jax.random.split(rng_key)
    posterior, history, reason = _active_steps(key, session, backend, config)
    if backend.final_fit is not None:
        posterior = session.fit(key_final, backend, final=True)
        history.append(session.summarize_fit(posterior, final=True))
    return StrategyResult(posterior=posterior, history=history, stop_reason=reason,
                          recommendation=backend.recommend(key_rec, posterior,
                                                           config.target_flops))


def _active_steps(rng_key, session: Session, backend: ModelBackend,
                  config: LoopConfig) -> tuple[Any, list, str]:
    active = config.active
    key_design, key = jax.random.split(rng_key)
    for cfg in initial_design(
        key_design, budget_flops=session.budget, num_initial=active.num_initial
    ):
        session.query(cfg, reason="initial design")
    history: list[dict] = []
    while True:
        key, key_fit, key_cand = jax.random.split(key, 3)
        posterior = session.fit(key_fit, backend)
        summary = session.summarize_fit(posterior)
        history.append(summary)
        session.last_ci = tuple(summary["n_opt_ci90"])
        if active.stop_ci_width and summary["n_opt_ci90_ln_width"] < active.stop_ci_width:
            return posterior, history, "interval narrower than stop width"
        # the budget first: a run that spent it with its last allowed query ended by budget
        if config.budget_spent(session):
            return posterior, history, "budget spent"
        if session.n_queries >= config.max_queries:
            return posterior, history, "query limit reached (safety bound)"
        picks = session.clock.timed(
            "acquisition", _acquire, key_cand, posterior, session, backend, config
        )
        if not picks:
            return posterior, history, "no affordable query left"
        for cfg, score, reduction, floor, of in picks:
            session.query(
                cfg,
                reason=f"expected {'var' if config.criterion == 'n-opt' else 'risk'} reduction "
                f"{reduction:.3g} of {of:.3g}, priced at {max(cfg.train_flops, floor):.2g} "
                f"FLOPs (floor {floor:.2g})",
                score=score,
            )


def _candidates(rng_key, posterior, remaining: float, paid, config: CandidateConfig):
    """The candidate queries, focused on the posterior's optimal size at each compute."""
    focus = {int(flops): posterior.optimal_size_median(float(flops))
             for flops in TRAIN_FLOPS if flops <= remaining}
    return generate_candidates(rng_key, remaining_flops=remaining, paid=paid,
                               focus_n_params=focus, config=config)


def _acquire(rng_key, posterior, session: Session, backend: ModelBackend, config: LoopConfig):
    """Up to ``queries_per_fit`` picks: ``(config, score, reduction, floor, of)`` each."""
    active = config.active
    remaining = session.remaining()
    candidates = _candidates(
        rng_key, posterior, remaining,
        [o.config for o in session.observations()] + list(session.failed.values()),
        active.candidates)
    if not candidates:
        return []
    features = backend.featurize(candidates)
    mean = np.asarray(posterior.predict_mean(features), np.float64)
    noise = np.asarray(posterior.noise_sd(features), np.float64)
    g = np.log(np.asarray(posterior.optimum(config.target_flops).n_params, np.float64))
    costs = np.array([c.train_flops for c in candidates], np.float64)
    planned_left = active.planned_queries - session.n_queries
    allowed = None
    if active.budget_plan == "c-optimal":
        allowed, split = plan_support(
            parameter_draws(posterior), g, mean, np.mean(noise**2, axis=0), costs,
            remaining_flops=remaining, floor=pacing_floor(remaining, planned_left))
        logger.info("budget plan over %d candidates: %d in its support; split %s",
                    len(candidates), int(allowed.sum()), summarize_split(split))
    quantities, weights, of = g, None, float(np.var(g, ddof=1))
    if config.criterion == "decision":
        risk = decision_risk(posterior, backend.featurize, config.target_flops,
                             active.decision)
        quantities, weights, of = risk.quantities, risk.weights, risk.risk()
        logger.debug("decision risk %.3g: %s", of, dict(zip(risk.names, risk.weights,
                                                             strict=True)))
    slots = min(active.queries_per_fit, config.max_queries - session.n_queries)
    picks, scores, reductions, floors = select_batch(
        quantities, mean, noise, costs, remaining_flops=remaining, batch_size=slots,
        planned_queries_left=planned_left, config=active.acquisition, weights=weights,
        allowed=allowed,
    )
    logger.debug("scored %d candidates; picked %s", len(candidates), picks)
    return [
        (candidates[i], s, r, f, of)
        for i, s, r, f in zip(picks, scores, reductions, floors, strict=True)
    ]


def _yardstick(rng_key, posterior, session: Session, backend: ModelBackend,
               config: LoopConfig) -> dict:
    """:func:`bayes_scaling.design.design_yardstick` of the finished run."""
    candidates = _candidates(rng_key, posterior, session.budget, (), config.active.candidates)
    return design_yardstick(
        posterior, backend.featurize, [o.config for o in session.observations()], candidates,
        target_flops=config.target_flops, budget_flops=session.budget,
        planned_queries=config.active.planned_queries)


def _run_random(rng_key, key_rec, session: Session, backend: ModelBackend,
                config: LoopConfig) -> StrategyResult:
    key_draw, key_fit = jax.random.split(rng_key)
    pool = generate_candidates(
        key_draw,
        remaining_flops=session.budget,
        config=CandidateConfig(num_random=20 * config.max_queries + 200, num_focus=0,
                               head_dim=config.active.candidates.head_dim),
    )
    for cfg in pool:
        if session.n_queries >= config.max_queries or config.budget_spent(session):
            break
        if session.affordable(cfg):
            session.query(cfg, reason="random")
    posterior = session.fit(key_fit, backend, final=True)
    return StrategyResult(
        posterior=posterior, history=[session.summarize_fit(posterior, final=True)],
        stop_reason="budget spent",
        recommendation=backend.recommend(key_rec, posterior, config.target_flops),
    )


def run_loop(
    rng_key,
    oracle: LossOracle,
    config: LoopConfig,
    *,
    backend: ModelBackend | None = None,
    callback: Callable[[QueryEvent], None] | None = None,
    progress=None,
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
    progress : bayes_scaling.progress.Progress, optional
        Bars for the default backend's fits (ignored with an explicit ``backend``).

    Raises
    ------
    InvalidConfigError
        If ``config.budget_flops`` is not the oracle's budget.
    """
    if float(config.budget_flops) != float(oracle.budget_flops):
        raise InvalidConfigError(
            f"budget_flops: expected the oracle's budget {float(oracle.budget_flops):g} (the one "
            f"authority on the budget), got {float(config.budget_flops):g}"
        )
    check_budget(oracle, config)
    start, start_cpu = time.perf_counter(), time.process_time()
    if backend is None and (config.strategy != "isoflop-grid"
                            or config.isoflop_grid.fit_baseline_posterior):
        backend = default_backend(config, progress)
    session = Session(oracle, target_flops=config.target_flops, max_queries=config.max_queries,
                      callback=callback)
    key_run, key_rec = jax.random.split(rng_key)
    key_design = jax.random.fold_in(rng_key, 2)
    if config.strategy == "active":
        result = _run_active(key_run, key_rec, session, backend, config)
    elif config.strategy == "random":
        result = _run_random(key_run, key_rec, session, backend, config)
    else:
        from bayes_scaling.isoflop_grid import run_isoflop_grid

        result = run_isoflop_grid(key_run, session, backend, config.isoflop_grid)
    extra = dict(result.extra)
    if result.posterior is not None and session.observations():
        extra.update(session.clock.timed("design", _yardstick, key_design, result.posterior,
                                         session, backend, config))
    timings = dict(session.clock.seconds)
    timings["total"] = time.perf_counter() - start
    timings.update({f"cpu_{name}": value for name, value in session.clock.cpu.items()})
    timings["cpu_total"] = time.process_time() - start_cpu
    logger.info(
        "%s done (%s): %d runs, %.3g FLOPs; time fit %.1fs, acquisition %.1fs, query %.1fs",
        config.strategy, result.stop_reason, len(session.paid), session.flops_used(),
        timings["fit"], timings["acquisition"], timings["query"],
    )
    return LoopResult(
        strategy=config.strategy,
        observations=session.observations(),
        posterior=result.posterior,
        recommendation=result.recommendation,
        history=result.history,
        timings=timings,
        flops_used=session.flops_used(),
        stop_reason=result.stop_reason,
        extra=extra,
    )

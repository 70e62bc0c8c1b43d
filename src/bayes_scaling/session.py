"""The bookkeeping every strategy shares: one :class:`Session` per run over a LossOracle.

A session asks the oracle, never a copy of it, what the budget is and how much is left: the
oracle (the ledgered one in production) is the single authority that refuses an unaffordable
query, atomically. The session adds what the oracle does not know: the strategy's safety bound
on the number of paid queries, the progress events, the timings, and a log line for every query
it answers and every one it refuses (over the query limit, or refused by the oracle). Every
strategy (``active``, ``random``, ``isoflop-grid``) runs through it and returns a
:class:`StrategyResult`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bayes_scaling.errors import BudgetExceededError, FailedQueryError
from bayes_scaling.oracle import LossOracle, Observation
from bayes_scaling.space import RunConfig
from bayes_scaling.summary import equal_tailed

__all__ = ["Clock", "QueryEvent", "Session", "StrategyResult", "fit_summary", "log_fit"]

logger = logging.getLogger(__name__)


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
class StrategyResult:
    """What one strategy concluded (the session holds what it paid).

    Attributes
    ----------
    posterior : PosteriorQueries or None
        The final Bayesian posterior (None when the strategy fits none).
    recommendation : Recommendation
        The configuration to train at the target.
    history : list of dict
        :func:`fit_summary` after every fit (the final one marked ``"final": True``).
    stop_reason : str
    extra : dict
        Strategy-specific results (``isoflop-grid``'s fits).
    """

    posterior: Any
    recommendation: Any
    history: list[dict]
    stop_reason: str
    extra: dict = field(default_factory=dict)


class Clock:
    """Wall-clock and process CPU seconds per part (CPU time is robust to a shared machine)."""

    def __init__(self) -> None:
        self.seconds = {"fit": 0.0, "final_fit": 0.0, "acquisition": 0.0, "query": 0.0,
                        "design": 0.0}
        self.cpu = dict.fromkeys(self.seconds, 0.0)

    def timed(self, name: str, fn, *args, **kwargs):
        """Call ``fn(*args, **kwargs)``, adding its wall and CPU seconds to ``name``."""
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            self.seconds[name] += time.perf_counter() - start
            self.cpu[name] += time.process_time() - start_cpu


def fit_summary(posterior, target_flops: float, flops_used: float, n_runs: int) -> dict:
    """The posterior's ``N_opt`` and optimal loss at the target after one fit (a history row)."""
    optimum = posterior.optimum(target_flops)
    log_n = np.log(np.asarray(optimum.n_params, np.float64))
    lo, median, hi = equal_tailed(log_n)
    loss_lo, loss_median, loss_hi = equal_tailed(optimum.loss)
    return {
        "flops_used": float(flops_used),
        "n_runs": int(n_runs),
        "n_opt_median": float(np.exp(median)),
        "n_opt_ci90": [float(np.exp(lo)), float(np.exp(hi))],
        "n_opt_ci90_ln_width": float(hi - lo),
        "g_var": float(np.var(log_n, ddof=1)),
        "loss_median": float(loss_median),
        "loss_ci90": [float(loss_lo), float(loss_hi)],
        "loss_ci90_width": float(loss_hi - loss_lo),
    }


def log_fit(summary: dict, *, final: bool = False) -> None:
    """Log one history row; the final fit is named as such."""
    logger.info(
        "%s on %d runs (%.3g FLOPs): N_opt %.3g, 90%% [%.3g, %.3g] (ln-width %.2f); "
        "loss %.3f [%.3f, %.3f]",
        "final fit" if final else "fit", summary["n_runs"], summary["flops_used"],
        summary["n_opt_median"], *summary["n_opt_ci90"], summary["n_opt_ci90_ln_width"],
        summary["loss_median"], *summary["loss_ci90"],
    )


class Session:
    """One strategy run's bookkeeping over ``oracle``: queries, refusals, progress, timings.

    Parameters
    ----------
    oracle : LossOracle
        The budget's single authority: :attr:`budget` and :meth:`remaining` ask it.
    target_flops : float
        The compute the run plans for (for the history rows).
    max_queries : int
        Most paid queries (a safety bound); a query past it is refused and logged. A failed
        query (charged, no usable loss) counts as paid and is never asked again.
    callback : callable, optional
        Called with a :class:`QueryEvent` after every answered query.

    Observations the oracle already holds (a resumed run) count as paid: repeating one is free.
    """

    def __init__(self, oracle: LossOracle, *, target_flops: float, max_queries: int,
                 callback: Callable[[QueryEvent], None] | None = None) -> None:
        self.oracle = oracle
        self.target_flops = float(target_flops)
        self.max_queries = int(max_queries)
        self.callback = callback
        self.clock = Clock()
        self.paid = {o.config.key(): o.loss for o in oracle.observations()}
        self.failed: dict[tuple, RunConfig] = {}  # charged, no usable loss: never asked again
        self.n_queries = len(self.paid)
        self.last_ci: tuple[float, float] | None = None

    @property
    def budget(self) -> float:
        """The oracle's FLOP budget."""
        return float(self.oracle.budget_flops)

    def flops_used(self) -> float:
        """FLOPs the oracle has charged."""
        return float(self.oracle.flops_used())

    def remaining(self) -> float:
        """FLOPs left under the oracle's budget."""
        return self.budget - self.flops_used()

    def affordable(self, cfg: RunConfig) -> bool:
        """Whether the oracle would answer ``cfg`` now (a repeat is free); nothing is logged."""
        return cfg.key() in self.paid or cfg.train_flops <= self.remaining() + 1e-6

    def query(self, cfg: RunConfig, *, reason: str, score: float = float("nan")) -> bool:
        """Ask the oracle for ``cfg``'s loss; True if answered, False (logged) if refused."""
        repeat = cfg.key() in self.paid
        if cfg.key() in self.failed:
            logger.info("query refused: it failed before (charged, no usable loss): %s", cfg)
            return False
        if not repeat and self.n_queries >= self.max_queries:
            logger.info("query refused: the limit of %d paid queries is reached: %s",
                        self.max_queries, cfg)
            return False
        try:
            loss = self.clock.timed("query", self.oracle.query, cfg)
        except BudgetExceededError as exc:
            logger.info("query refused by the oracle (%s): %s", exc, cfg)
            return False
        except FailedQueryError as exc:  # the oracle warned when it was paid
            logger.info("skipped: %s", exc)
            self.failed[cfg.key()] = cfg
            self.n_queries += 1
            return False
        if not repeat:
            self.paid[cfg.key()] = loss
            self.n_queries += 1
        used = self.flops_used()
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
        """Every answered query, in the order paid."""
        return list(self.oracle.observations())

    def fit(self, rng_key, backend, *, final: bool = False):
        """Fit ``backend`` to every observation (``final``: with its final settings)."""
        obs = self.observations()
        features = backend.featurize([o.config for o in obs])
        loss = np.array([o.loss for o in obs], np.float64)
        if not final:
            return self.clock.timed("fit", backend.fit, rng_key, features, loss)
        fit = backend.final_fit if backend.final_fit is not None else backend.fit
        before, before_cpu = self.clock.seconds["fit"], self.clock.cpu["fit"]
        try:
            return self.clock.timed("fit", fit, rng_key, features, loss)
        finally:
            self.clock.seconds["final_fit"] += self.clock.seconds["fit"] - before
            self.clock.cpu["final_fit"] += self.clock.cpu["fit"] - before_cpu

    def summarize_fit(self, posterior, *, final: bool = False) -> dict:
        """The history row of ``posterior`` now, logged (the final fit named as such).

        The fit's diagnostic warnings are logged too: as warnings for the final fit (the one
        the report uses), at DEBUG for the in-loop fits (deliberately small: they only rank
        queries, so "r_hat needs 2 chains" after each of them would be noise).
        """
        summary = fit_summary(posterior, self.target_flops, self.flops_used(), len(self.paid))
        log_fit(summary, final=final)
        for message in posterior.diagnostics.warnings:
            logger.log(logging.WARNING if final else logging.DEBUG, "%s: %s",
                       "final fit" if final else "in-loop fit", message)
        return {**summary, "final": True} if final else summary

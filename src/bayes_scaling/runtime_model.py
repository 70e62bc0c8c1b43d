"""How long a 2026 training run takes: a throughput model learned from completed runs.

The 2026 API charges seconds of B200 time, not FLOPs, and refuses to finish a run that goes past
its ``max_runtime_seconds`` (it fails with a partial curve and is charged the whole reservation).
So the loop needs, for every candidate, the seconds it will cost (its price) and a reservation
that covers it with high probability without holding much more of the budget than it needs.

Model. A run does ``F = T f_train + n_evals 2^18 f_val`` FLOPs (``T`` training tokens, per-token
FLOPs of :mod:`bayes_scaling.params2026`: ``6 N_mm + 12 L s d`` to train, ``2 N_mm + 4 L s d``
to evaluate, spec §4) at a throughput that rises with model size (small
models use the B200 poorly, spec §2.5)::

    ln(F / seconds) = a + b (ln N_mm - ln N_ref) + c (ln B - ln 128)
                      + e (ln(F / n_evals) - ln 1e14) + noise,         noise ~ N(0, s^2)

with ``N_mm`` the matmul parameters, ``B`` the batch size and ``F / n_evals`` the work of one
chunk (a fixed cost per chunk, such as host data loading, lowers the throughput of small chunks),
capped at
``max_flops_per_second`` (half of a B200's dense bf16 peak). Bayesian linear regression with a
conjugate normal prior centred on the one published run (spec §2.5: 51.4M parameters, 8.39M
tokens, 16 evaluations in 10.18 s: about 2.5e14 FLOP/s counted this way):
``a ~ N(ln 2.5e14, 0.6)``, ``b ~ N(0.35, 0.2)``, ``c ~ N(0, 0.15)``, ``e ~ N(0, 0.15)``; the noise
scale ``s`` is the prior's 0.2 pooled with the residuals (3 pseudo-observations). Completed runs
enter with their ``used_runtime_seconds``; failed runs do not (a timeout's time is only a lower
bound). With fewer than ``min_runs_structural`` completed runs the prior is used as it is (a few
runs shrink the regression's sd faster than its misfit shrinks); the regression is the fallback
should the cost-component model below fail to fit.

Once ``min_runs_structural`` runs have completed, a cost-component model replaces the
regression (a log-linear throughput cannot follow both the compute-bound and the
overhead-bound regimes)::

    seconds = k1 C_train / u(d, 512 B) + k2 S + k3 S L + k4 C_val / u(d, 512 B_val)
              + k5 n_evals V + k6 n_evals

with ``C`` the FLOPs (/1e15), ``S`` the optimizer steps, ``V`` the validation batches per
evaluation and a utilisation that saturates in width and in tokens per matrix product,
``u = d^2 / (d^2 + d0^2) * t / (t + t0)`` (small models use a GPU poorly). The ``k`` are
non-negative least squares on relative errors, ``d0`` and ``t0`` the best of a log grid; the
log-residual sd (pooled with the prior's 0.1, inflated by ``1 + 6/n`` for the fitted
coefficients) is the predictive sd.

Reservation. ``max_runtime_seconds = median * exp(z * sd) + slack``, with ``sd`` the predictive
sd of the log time (parameter uncertainty and noise) and ``z = 3`` by default: about a 0.1%
chance of a timeout under the model, while the reservation (refunded at the end) shrinks as the
model learns.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from bayes_scaling.api2026.schemas import MAX_RUNTIME_SECONDS, N_VAL_TOKENS, TrainingConfig
from bayes_scaling.params2026 import (
    eval_flops_per_token_2026,
    matmul_params_2026,
    train_flops_per_token_2026,
)

__all__ = ["RuntimeModel", "RuntimePrior", "run_flops"]

_N_REF = 3.7e7  # matmul parameters of the spec's notebook run (about)
_B_REF = 128.0


@functools.lru_cache(maxsize=8192)
def _shape_flops(hidden: int, layers: int, intermediate: int, vocab: int
                 ) -> tuple[float, float, float]:
    """Train and eval FLOPs per token and matmul parameters of one shape (cached: hot path)."""
    shape = (hidden, layers, intermediate)
    return (
        float(train_flops_per_token_2026(*shape, vocab_size=vocab)),
        float(eval_flops_per_token_2026(*shape, vocab_size=vocab)),
        float(matmul_params_2026(*shape, vocab_size=vocab)),
    )


def _shape(config: TrainingConfig) -> tuple[float, float, float]:
    arch = config.architecture_config
    return _shape_flops(arch.hidden_size, arch.num_hidden_layers, arch.intermediate_size,
                        arch.vocab_size)


def _per_token(config: TrainingConfig) -> tuple[float, float]:
    train, val, _ = _shape(config)
    return train, val


def run_flops(config: TrainingConfig) -> float:
    """FLOPs of a whole run: training tokens plus ``n_evals`` passes over the 2^18 val tokens."""
    train, val = _per_token(config)
    return float(config.total_train_tokens) * train + config.n_evals * N_VAL_TOKENS * val


def _matmul(config: TrainingConfig) -> float:
    return _shape(config)[2]


_D0_GRID = np.geomspace(64.0, 2048.0, 11)
_T0_GRID = np.geomspace(256.0, 65536.0, 11)


def _components(configs: Sequence[TrainingConfig], d0: float, t0: float) -> np.ndarray:
    """The six cost components of each configuration (see the module docstring), ``(M, 6)``."""
    rows = []
    for c in configs:
        arch = c.architecture_config
        d = float(arch.hidden_size)
        train, val = _per_token(c)
        width = d * d / (d * d + d0 * d0)
        t_train, t_val = 512.0 * c.train_batch_size, 512.0 * c.val_batch_size
        steps = c.total_train_tokens / t_train
        val_batches = N_VAL_TOKENS / t_val
        rows.append((
            c.total_train_tokens * train / 1e15 / (width * t_train / (t_train + t0)),
            steps,
            steps * arch.num_hidden_layers,
            c.n_evals * N_VAL_TOKENS * val / 1e15 / (width * t_val / (t_val + t0)),
            c.n_evals * val_batches,
            float(c.n_evals),
        ))
    return np.array(rows, dtype=np.float64).reshape(len(rows), 6)


def _features(configs: Sequence[TrainingConfig]) -> np.ndarray:
    rows = [
        (1.0, math.log(_matmul(c) / _N_REF), math.log(c.train_batch_size / _B_REF),
         math.log(run_flops(c) / c.n_evals / 1e14))
        for c in configs
    ]
    return np.array(rows, dtype=np.float64).reshape(len(rows), 4)


@dataclass(frozen=True, kw_only=True)
class RuntimePrior:
    """Prior of the throughput regression (see the module docstring)."""

    mean: tuple[float, ...] = (math.log(2.5e14), 0.35, 0.0, 0.0)
    sd: tuple[float, ...] = (0.6, 0.2, 0.15, 0.15)
    noise_sd: float = 0.2
    noise_pseudo_obs: float = 3.0
    max_flops_per_second: float = 1.1e15
    min_runs_structural: int = 6
    structural_noise_sd: float = 0.1


class RuntimeModel:
    """Predicts the seconds of a 2026 run from the completed runs' measured runtimes.

    Parameters
    ----------
    prior : RuntimePrior, optional
    """

    def __init__(self, prior: RuntimePrior | None = None) -> None:
        self.prior = prior or RuntimePrior()
        self._mean = np.array(self.prior.mean, np.float64)
        self._cov = np.diag(np.array(self.prior.sd, np.float64) ** 2)
        self._noise = float(self.prior.noise_sd)
        self.n_runs = 0
        self.n_fitted = 0
        self._structural: tuple[float, float, np.ndarray, float] | None = None

    def fit(self, configs: Sequence[TrainingConfig], seconds: Sequence[float]) -> RuntimeModel:
        """Condition on completed runs (``used_runtime_seconds``); returns ``self``.

        Runs of under 0.5 s are skipped (their time is dominated by timer granularity).
        """
        self.n_fitted = len(configs)
        keep = [(c, float(s)) for c, s in zip(configs, seconds, strict=True) if s >= 0.5]
        self.n_runs = len(keep)
        prior_mean = np.array(self.prior.mean, np.float64)
        prior_prec = np.diag(1.0 / np.array(self.prior.sd, np.float64) ** 2)
        self._structural = None
        if len(keep) < self.prior.min_runs_structural:
            # A few runs shrink the regression's sd faster than its misfit across regimes
            # (overhead- vs compute-bound) shrinks: keep the prior's wide margins until the
            # cost-component model can be fitted.
            keep = []
        if not keep:
            self._mean, self._cov = prior_mean, np.linalg.inv(prior_prec)
            self._noise = float(self.prior.noise_sd)
            return self
        x = _features([c for c, _ in keep])
        y = np.log([run_flops(c) / s for c, s in keep])
        noise = float(self.prior.noise_sd)
        for _ in range(3):  # alternate the coefficients and the pooled noise scale
            prec = prior_prec + x.T @ x / noise**2
            cov = np.linalg.inv(prec)
            mean = cov @ (prior_prec @ prior_mean + x.T @ y / noise**2)
            ssr = float(np.sum((y - x @ mean) ** 2))
            nu0 = self.prior.noise_pseudo_obs
            noise = math.sqrt((nu0 * self.prior.noise_sd**2 + ssr) / (nu0 + len(y)))
        self._mean, self._cov, self._noise = mean, cov, noise
        self._structural = self._fit_structural([c for c, _ in keep],
                                                np.array([s for _, s in keep]))
        return self

    def _fit_structural(self, configs, seconds: np.ndarray):
        best = None
        for d0 in _D0_GRID:
            for t0 in _T0_GRID:
                x = _components(configs, d0, t0) / seconds[:, None]
                coef, _ = nnls(x, np.ones(len(seconds)))
                pred = _components(configs, d0, t0) @ coef
                if np.any(pred <= 0):
                    continue
                ssr = float(np.sum(np.log(pred / seconds) ** 2))
                if best is None or ssr < best[0]:
                    best = (ssr, d0, t0, coef)
        if best is None:
            return None
        ssr, d0, t0, coef = best
        n, nu0 = len(seconds), self.prior.noise_pseudo_obs
        noise = math.sqrt((nu0 * self.prior.structural_noise_sd**2 + ssr) / (nu0 + n))
        return float(d0), float(t0), coef, noise * math.sqrt(1.0 + 6.0 / n)

    def log_seconds(self, configs: Sequence[TrainingConfig]) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and sd of ``ln seconds`` of each configuration, shapes ``(M,)``."""
        configs = list(configs)
        if self._structural is not None:
            d0, t0, coef, sd = self._structural
            pred = np.maximum(_components(configs, d0, t0) @ coef, 1e-3)
            return np.log(pred), np.full(len(configs), sd)
        x = _features(configs)
        log_thr = np.minimum(x @ self._mean, math.log(self.prior.max_flops_per_second))
        flops = np.array([run_flops(c) for c in configs], np.float64)
        var = np.einsum("mi,ij,mj->m", x, self._cov, x) + self._noise**2
        return np.log(flops) - log_thr, np.sqrt(var)

    def seconds(self, configs: Sequence[TrainingConfig]) -> np.ndarray:
        """Median predicted seconds of each configuration (the price in the budget's unit)."""
        mean, _ = self.log_seconds(configs)
        return np.exp(mean)

    def reservation(
        self, configs: Sequence[TrainingConfig], *, z: float = 3.0, slack: float = 2.0
    ) -> np.ndarray:
        """``max_runtime_seconds`` to send: ``median exp(z sd) + slack``, within [1, 43200]."""
        mean, sd = self.log_seconds(configs)
        return np.clip(np.exp(mean + z * sd) + slack, 1.0, MAX_RUNTIME_SECONDS)

    def tokens_for_seconds(self, config: TrainingConfig, seconds: float) -> float:
        """Training tokens that take ``seconds`` at the median prediction (evaluation included).

        One configuration of :meth:`tokens_for_seconds_many`.
        """
        return float(self.tokens_for_seconds_many([config], [seconds])[0])

    def tokens_for_seconds_many(
        self, configs: Sequence[TrainingConfig], seconds: Sequence[float]
    ) -> np.ndarray:
        """Training tokens of each configuration that take its ``seconds`` at the median.

        Bisection on ``ln T`` (the predicted time rises with the tokens), all configurations at
        once; 0 where even the evaluation alone takes longer. Shape ``(M,)``.
        """
        configs = list(configs)
        seconds = np.asarray(seconds, np.float64).reshape(len(configs))

        def predicted(log_tokens: np.ndarray) -> np.ndarray:
            return self.seconds([
                c.model_copy(update={"total_train_tokens": int(math.exp(t))})
                for c, t in zip(configs, log_tokens, strict=True)
            ])

        low = np.full(len(configs), math.log(1e3))
        high = np.full(len(configs), math.log(5e11))
        none = predicted(low) >= seconds
        for _ in range(60):
            mid = 0.5 * (low + high)
            under = predicted(mid) < seconds
            low, high = np.where(under, mid, low), np.where(under, high, mid)
        return np.where(none, 0.0, np.exp(low))

    def summary(self) -> dict:
        """Coefficients, their sds and the noise scale (for the report)."""
        structural = None
        if self._structural is not None:
            d0, t0, coef, sd = self._structural
            structural = {"d0": d0, "t0": t0, "coefficients": [float(v) for v in coef],
                          "log_sd": sd}
        return {
            "n_runs": self.n_runs,
            "structural": structural,
            "coefficients": [float(v) for v in self._mean],
            "coefficient_sd": [float(v) for v in np.sqrt(np.diag(self._cov))],
            "noise_sd": float(self._noise),
            "features": ["1", "ln(N_mm / 3.7e7)", "ln(train_batch_size / 128)",
                         "ln(FLOPs per chunk / 1e14)"],
            "max_flops_per_second": self.prior.max_flops_per_second,
        }

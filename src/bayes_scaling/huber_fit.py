"""Epoch-style Approach 3: the Chinchilla law by Huber loss on log loss, with bootstrap intervals.

The frequentist baseline the Bayesian fit is compared with on held-out data (Hoffmann et al.
2022, approach 3, as replicated by Besiroglu et al. 2024, "Chinchilla Scaling: A replication
attempt"): minimise

    sum_i Huber_delta( LSE(a - alpha ln N_i, b - beta ln D_i, e) - ln L_i )

over ``(a, b, e, alpha, beta)`` (``A = exp a``, ``B = exp b``, ``E = exp e``) with L-BFGS-B from
a grid of starts, keeping the best optimum; ``delta = 1e-3`` as in both papers. Intervals come from
a nonparametric bootstrap: rows resampled with replacement and the law refitted from the
full-data optimum and a few grid starts (Epoch's notebook refits each bootstrap sample the same
way). A predictive draw of an observed loss is one bootstrap law's value times ``exp(r)`` with
``r`` a log residual of the full-data fit drawn at random, so intervals of observed losses
carry the scatter as well as the parameter uncertainty.

Everything derived from a law (loss, compute-optimal allocation) is :mod:`bayes_scaling.law`'s.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import jax
import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from bayes_scaling.errors import DataFormatError
from bayes_scaling.law import LawParams, optimal_allocation, predict_loss

__all__ = ["HUBER_DELTA", "START_GRID", "HuberFit", "bootstrap_huber", "huber_objective"]

#: Huber threshold on log loss (Hoffmann et al. 2022; Besiroglu et al. 2024).
HUBER_DELTA = 1e-3
#: Grid of starts ``(a, b, e, alpha, beta)``: a coarser version of Epoch's (they use
#: a, b in 0..25 by 5, e in -1..1 by 0.5, alpha, beta in 0..2 by 0.5).
START_GRID = (
    (0.0, 10.0, 20.0),
    (0.0, 10.0, 20.0),
    (-1.0, 0.0, 1.0),
    (0.2, 0.5, 1.0),
    (0.2, 0.5, 1.0),
)
_BOUNDS = ((-10.0, 60.0), (-10.0, 60.0), (-5.0, 5.0), (0.01, 3.0), (0.01, 3.0))


@dataclass(frozen=True, kw_only=True)
class HuberFit:
    """Approach-3 fit: the full-data law and its bootstrap refits.

    Attributes
    ----------
    params : numpy.ndarray
        ``(5,)``: ``a, b, e, alpha, beta`` of the full-data optimum.
    boot : numpy.ndarray
        ``(B, 5)``: the same for each bootstrap sample (``B = 0``: none drawn).
    residuals : numpy.ndarray
        ``(M,)``: log residuals ``ln L - ln L_fit`` of the fitted rows.
    """

    params: np.ndarray
    boot: np.ndarray = field(repr=False)
    residuals: np.ndarray = field(repr=False)

    def law(self, *, bootstrap: bool = True) -> LawParams:
        """``E, A, B, alpha, beta`` of the bootstrap fits ``(B,)`` (or the full-data fit)."""
        p = self.boot if bootstrap else self.params[None, :]
        return LawParams(E=np.exp(p[:, 2]), A=np.exp(p[:, 0]), B=np.exp(p[:, 1]),
                         alpha=p[:, 3], beta=p[:, 4])

    def predict(self, n_params, n_tokens) -> np.ndarray:
        """The full-data law's loss at each ``(N, D)``, ``(M,)``."""
        law = self.law(bootstrap=False)
        return np.asarray(predict_loss(law, np.asarray(n_params, np.float64)[None, :],
                                       np.asarray(n_tokens, np.float64)[None, :]))[0]

    def sample_predictive(self, rng_key, n_params, n_tokens) -> np.ndarray:
        """Predictive draws ``(B, M)`` of observed losses: bootstrap law times a log residual."""
        law = self.law()
        n = np.asarray(n_params, np.float64)[None, :]
        d = np.asarray(n_tokens, np.float64)[None, :]
        mean = np.asarray(predict_loss(LawParams(*(v[:, None] for v in law)), n, d))
        pick = np.asarray(jax.random.randint(rng_key, mean.shape, 0, self.residuals.size))
        return mean * np.exp(self.residuals[pick])

    def optimum(self, flops: float) -> tuple[np.ndarray, np.ndarray]:
        """Bootstrap draws ``(B,)`` of ``N_opt`` and the law's loss there at ``flops``."""
        law = self.law()
        n_opt, d_opt = optimal_allocation(law, flops)
        return np.asarray(n_opt), np.asarray(predict_loss(law, n_opt, d_opt))


def _terms(params, log_n, log_d):
    """The three log-terms ``a - alpha ln N``, ``b - beta ln D``, ``e``: ``(3, M)``."""
    a, b, e, alpha, beta = params
    return np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)])


def huber_objective(params, log_n, log_d, log_loss, delta: float = HUBER_DELTA):
    """Sum of Huber losses of the log residuals and its gradient in ``(a, b, e, alpha, beta)``."""
    terms = _terms(params, log_n, log_d)
    top = terms.max(axis=0)
    weights = np.exp(terms - top)
    total = weights.sum(axis=0)
    r = top + np.log(total) - log_loss
    small = np.abs(r) <= delta
    value = np.sum(np.where(small, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta)))
    dr = np.where(small, r, delta * np.sign(r))
    w = weights * (dr / total)[None, :]
    grad = np.array([w[0].sum(), w[1].sum(), w[2].sum(), -(w[0] * log_n).sum(),
                     -(w[1] * log_d).sum()])
    return value, grad


def _best(starts, log_n, log_d, log_loss, delta):
    best = None
    for start in starts:
        res = minimize(huber_objective, np.asarray(start, np.float64), jac=True,
                       args=(log_n, log_d, log_loss, delta), method="L-BFGS-B", bounds=_BOUNDS,
                       options={"ftol": 1e-13, "gtol": 1e-9, "maxiter": 2000})
        if best is None or res.fun < best.fun:
            best = res
    return np.asarray(best.x, np.float64)


def _columns(n_params, n_tokens, loss):
    arrays = [np.asarray(v, np.float64).ravel() for v in (n_params, n_tokens, loss)]
    if len({a.size for a in arrays}) != 1 or arrays[0].size < 5:
        raise DataFormatError("n_params, n_tokens, loss: expected equal lengths of at least 5, "
                              f"got {', '.join(str(a.size) for a in arrays)}")
    if not all(np.all(np.isfinite(a) & (a > 0)) for a in arrays):
        raise DataFormatError("n_params, n_tokens, loss: expected positive finite numbers")
    return [np.log(a) for a in arrays]


def _ranked_starts(starts, log_n, log_d, log_loss, delta):
    """``starts`` sorted by their objective value (best first)."""
    return sorted(starts, key=lambda s: huber_objective(np.asarray(s, np.float64), log_n, log_d,
                                                        log_loss, delta)[0])


def bootstrap_huber(rng_key, n_params, n_tokens, loss, *, num_boot: int = 200,
                    delta: float = HUBER_DELTA, starts=None, num_starts: int = 12,
                    boot_starts: int = 2) -> HuberFit:
    """Fit Approach 3 and ``num_boot`` bootstrap refits.

    Parameters
    ----------
    rng_key : jax.Array
        Key of the resampling.
    n_params, n_tokens, loss : array-like of shape (M,)
    num_boot : int
        Bootstrap samples (0: none; ``HuberFit.law()`` then needs ``bootstrap=False``).
    delta : float
        Huber threshold on log loss.
    starts : sequence of 5-tuples, optional
        Candidate starts (default: the product of ``START_GRID``, 243 points).
    num_starts : int
        L-BFGS-B runs of the full-data fit: from the ``num_starts`` candidates of lowest
        objective (screening the grid by its value is far cheaper than optimising from each
        point, and the optimum of the Chinchilla data is the same as from Epoch's full grid).
    boot_starts : int
        Starts of each refit: the full-data optimum and the ``boot_starts - 1`` best candidates.
    """
    if isinstance(num_boot, bool) or not isinstance(num_boot, int) or num_boot < 0:
        raise DataFormatError(f"num_boot: expected a non-negative integer, got {num_boot!r}")
    log_n, log_d, log_loss = _columns(n_params, n_tokens, loss)
    starts = list(itertools.product(*START_GRID)) if starts is None else list(starts)
    ranked = _ranked_starts(starts, log_n, log_d, log_loss, delta)
    params = _best(ranked[:num_starts], log_n, log_d, log_loss, delta)
    refit_starts = [params, *ranked[: max(boot_starts - 1, 0)]]
    m = log_n.size
    index = np.asarray(jax.random.randint(rng_key, (num_boot, m), 0, m))
    boot = np.array([_best(refit_starts, log_n[i], log_d[i], log_loss[i], delta)
                     for i in index]).reshape(num_boot, 5)
    fitted = logsumexp(_terms(params, log_n, log_d), axis=0)
    return HuberFit(params=params, boot=boot, residuals=log_loss - fitted)

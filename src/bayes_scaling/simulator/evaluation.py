"""Benchmark-only views of a truth: the true mean loss anywhere, and the true optimum at a compute.

Nothing here is visible to a strategy (DESIGN.md sections 3 and 6): the loop only sees a
:class:`~bayes_scaling.oracle.LossOracle`. These functions score what a strategy recommends.

The true optimum searches ``d_model`` in multiples of 64 up to 4096, ``num_layers`` 1..96, head
dimension 64 (``num_heads = d_model / 64``), ``batch_size`` in {128, 256} and *any* learning
rate. The learning rate needs no search: in the truth family the loss depends on the learning
rate only through ``x = ln(lr / eta*)``, via ``K S_eff^-gamma`` with ``S_eff = S exp(p min(x, 0))``
(strictly decreasing in ``x`` for ``x < 0`` when ``K, p > 0``) and ``chi (...) max(x, 0)^2``
(non-decreasing in ``x`` for ``x > 0`` when ``chi >= 0``); both are at their minimum at ``x = 0``.
The shape factor is positive and multiplies a positive base, and the softplus cap is increasing,
so ``lr = eta*`` minimises the mean loss of every shape (``tests/test_evaluation.py`` checks it
numerically).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayes_scaling.errors import InvalidConfigError
from bayes_scaling.params import (
    HEAD_DIM,
    OPTIMUM_BATCH_SIZES,
    OPTIMUM_D_MODELS,
    OPTIMUM_NUM_LAYERS,
    non_embedding_params,
    tokens_for_flops,
)
from bayes_scaling.simulator.truth import (
    Truth,
    mean_loss,
    optimal_learning_rate,
    truth_tokens,
)

__all__ = ["TrueOptimum", "true_mean_loss", "true_optimum"]

OPTIMUM_HEAD_DIM = HEAD_DIM

_SHAPE_FIELDS = ("d_model", "num_layers", "num_heads", "batch_size", "learning_rate")


@dataclass(frozen=True, kw_only=True)
class TrueOptimum:
    """The truth's compute-optimal configuration at one compute.

    Attributes
    ----------
    d_model, num_layers, num_heads, batch_size : int
        The optimal shape (head dimension 64) and batch size.
    learning_rate : float
        The truth's optimal learning rate ``eta*`` of that shape at that compute.
    loss : float
        Its true mean loss (no noise).
    non_embedding_params : int
        Non-embedding parameters (output head included), the package's N.
    tokens : float
        Package-convention tokens, ``flops / (6 * non_embedding_params)``.
    truth_tokens : float
        Tokens as the truth counts them, ``flops / (6 (body + omega emb))`` (DESIGN section 3).
    flops : float
        The compute.
    """

    d_model: int
    num_layers: int
    num_heads: int
    batch_size: int
    learning_rate: float
    loss: float
    non_embedding_params: int
    tokens: float
    truth_tokens: float
    flops: float


def _field(config_like: Any, name: str):
    if isinstance(config_like, Mapping):
        if name not in config_like:
            raise InvalidConfigError(f"configuration: missing {name}")
        return config_like[name]
    if not hasattr(config_like, name):
        raise InvalidConfigError(
            f"configuration: expected an object with {name}, got {type(config_like).__name__}"
        )
    return getattr(config_like, name)


def true_mean_loss(truth: Truth, config_like: Any, flops) -> float | np.ndarray:
    """Compute the true mean loss (no noise) of a configuration at a compute, no range limits.

    Parameters
    ----------
    truth : Truth
        The simulated world.
    config_like : RunConfig, Recommendation, mapping or any object
        Anything with ``d_model``, ``num_layers``, ``num_heads``, ``batch_size`` and
        ``learning_rate`` (attributes or keys); its own ``train_flops``, if any, is ignored.
    flops : float or array
        The compute; an array gives an array of losses.

    Returns
    -------
    float or numpy.ndarray
        A float for scalar inputs, else an array of the broadcast shape.
    """
    values = [_field(config_like, name) for name in _SHAPE_FIELDS]
    loss = np.asarray(mean_loss(truth, *values, flops))
    return float(loss) if loss.ndim == 0 else loss


def true_optimum(truth: Truth, flops: float) -> TrueOptimum:
    """Find the minimum true mean loss at ``flops`` over the evaluation grid (module docstring).

    Vectorised over the 64 x 96 x 2 grid at ``lr = eta*``; takes a few milliseconds.
    """
    flops = float(flops)
    if not np.isfinite(flops) or flops <= 0:
        raise InvalidConfigError(f"flops: expected a positive number, got {flops!r}")
    d = OPTIMUM_D_MODELS[:, None, None]
    layers = OPTIMUM_NUM_LAYERS[None, :, None]
    bs = np.asarray(OPTIMUM_BATCH_SIZES)[None, None, :]
    heads = d // OPTIMUM_HEAD_DIM
    eta = optimal_learning_rate(truth, d, layers, flops)
    loss = np.asarray(mean_loss(truth, d, layers, heads, bs, eta, flops))
    i, j, k = np.unravel_index(np.nanargmin(loss), loss.shape)
    d_best = int(OPTIMUM_D_MODELS[i])
    layers_best = int(OPTIMUM_NUM_LAYERS[j])
    n_params = int(non_embedding_params(d_best, layers_best))
    return TrueOptimum(
        d_model=d_best,
        num_layers=layers_best,
        num_heads=d_best // OPTIMUM_HEAD_DIM,
        batch_size=int(OPTIMUM_BATCH_SIZES[k]),
        learning_rate=float(optimal_learning_rate(truth, d_best, layers_best, flops)),
        loss=float(loss[i, j, k]),
        non_embedding_params=n_params,
        tokens=float(tokens_for_flops(flops, n_params)),
        truth_tokens=float(truth_tokens(truth, d_best, layers_best, flops)),
        flops=flops,
    )

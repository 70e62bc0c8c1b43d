"""The Chinchilla law and its compute-optimal allocation, as pure JAX functions.

``L(N, D) = E + A / N**alpha + B / D**beta`` (Hoffmann et al. 2022, approach 3), with the FLOP
count ``C = 6 N D``. Every function broadcasts over its arguments, so the same code serves one
parameter set or a vector of posterior draws (shape ``(S,)``) against a grid of budgets.
Extrapolation happens here, so callers must keep JAX's x64 mode on (importing the package does).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

__all__ = ["LawParams", "optimal_allocation", "optimal_loss", "predict_loss"]


class LawParams(NamedTuple):
    """Parameters of the Chinchilla law; each a scalar or an array of draws of shape ``(S,)``."""

    E: jnp.ndarray
    A: jnp.ndarray
    B: jnp.ndarray
    alpha: jnp.ndarray
    beta: jnp.ndarray


def predict_loss(law: LawParams, n_params, n_tokens):
    """Loss of a model of ``n_params`` parameters trained on ``n_tokens`` tokens."""
    return law.E + law.A * jnp.power(n_params, -law.alpha) + law.B * jnp.power(n_tokens, -law.beta)


def optimal_allocation(law: LawParams, flops):
    """Compute-optimal ``(n_params, n_tokens)`` at ``flops`` under ``C = 6 N D``.

    ``N_opt = G (C/6)^(beta/(alpha+beta))`` with ``G = (alpha A / (beta B))^(1/(alpha+beta))``,
    and ``D_opt = (C/6) / N_opt``. Computed in log space for stability.
    """
    log_c6 = jnp.log(jnp.asarray(flops) / 6.0)
    total = law.alpha + law.beta
    log_g = (jnp.log(law.alpha * law.A) - jnp.log(law.beta * law.B)) / total
    log_n = log_g + law.beta / total * log_c6
    return jnp.exp(log_n), jnp.exp(log_c6 - log_n)


def optimal_loss(law: LawParams, flops):
    """The law's loss at the compute-optimal allocation for ``flops``."""
    n_opt, d_opt = optimal_allocation(law, flops)
    return predict_loss(law, n_opt, d_opt)

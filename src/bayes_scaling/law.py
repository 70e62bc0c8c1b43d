"""The Chinchilla law, the model's full mean-loss surface and what derives from them (pure JAX).

``L(N, D) = E + A / N**alpha + B / D**beta`` (Hoffmann et al. 2022, approach 3), with the FLOP
count ``C = 6 N D``. Every function broadcasts over its arguments, so the same code serves one
parameter set or a vector of posterior draws (shape ``(S,)``) against a grid of budgets.
Extrapolation happens here, so callers must keep JAX's x64 mode on (importing the package does).

:func:`mean_loss` is the model's whole surface (the law in its centred log-sum-exp form plus the
API nuisance terms, see :mod:`bayes_scaling.model` for the reasoning and the priors) and
:func:`log_optimal_learning_rate` its optimal learning rate; the numpyro model, the posterior's
predictions and its optimum search all call these two, nothing else restates them.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayes_scaling.params import CONTEXT_LENGTH, block_params, embedding_side_params

__all__ = [
    "LR_REF_BATCH",
    "LR_REF_PARAMS",
    "LR_REF_TOKENS",
    "STEPS_REF",
    "LawParams",
    "ModelData",
    "core_law",
    "frontier_gap",
    "isoflop_distance",
    "log_optimal_learning_rate",
    "log_tokens",
    "mean_loss",
    "optimal_allocation",
    "optimal_loss",
    "predict_loss",
    "row_counts",
    "warmup_penalty",
]

#: Block parameters, tokens and batch size at which ``exp(l0)`` is the optimal learning rate.
LR_REF_PARAMS = 1e7
LR_REF_TOKENS = 1e9
LR_REF_BATCH = 128.0
#: Optimizer steps at which ``exp(k_c)`` is the finite-step term.
STEPS_REF = 1e4


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


class ModelData(NamedTuple):
    """Padded model inputs, each a float64 array of shape ``(M_cap,)``.

    Generic rows carry ``is_config = 0`` and placeholder (finite) configuration values; padded rows
    carry ``mask = 0``. ``is_config`` is None where no row is an API row, and ``log_n`` and
    ``log_tokens`` are None where every row is one (padding aside): the branch of the law that
    no row takes is then left out of the compiled graph (on the 2,479 API rows of 2024 the
    generic law and the isoFLOP distance were computed, and discarded, on every row at every
    leapfrog step). ``log_n_center`` and ``log_d_center`` (scalars) are where NUTS centres the
    power-law terms (the data's mean log size and tokens); they change the sampler's coordinates,
    not the model. ``block``, ``emb`` and ``emb_flops`` are each row's block, embedding-side and
    token-convention embedding-side parameters (:mod:`bayes_scaling.count_family`); None: the 2025
    API model's closed forms of ``d_model`` and ``num_layers``. ``warmup_steps`` is each row's
    number of learning-rate warmup steps, present only on 2026 job-API rows (the runs that state
    their schedule; ``inf`` where a row has none to pay for, e.g. padding): its presence switches
    on the 2026 terms of :func:`mean_loss` and :func:`bayes_scaling.model.sample_params`; None
    (every 2025 and generic row) leaves the model exactly as it was.
    """

    is_config: jnp.ndarray | None
    log_n: jnp.ndarray | None
    log_tokens: jnp.ndarray | None
    log_n_center: jnp.ndarray
    log_d_center: jnp.ndarray
    d_model: jnp.ndarray
    num_layers: jnp.ndarray
    batch_size: jnp.ndarray
    log_lr: jnp.ndarray
    log_flops: jnp.ndarray
    mask: jnp.ndarray
    block: jnp.ndarray | None = None
    emb: jnp.ndarray | None = None
    emb_flops: jnp.ndarray | None = None
    warmup_steps: jnp.ndarray | None = None

    def as_jax(self) -> ModelData:
        """The same inputs as JAX arrays (the optional counts stay None when absent)."""
        return ModelData(*(None if a is None else jnp.asarray(a) for a in self))


def row_counts(data: ModelData):
    """``(block, emb, emb_flops)`` of every row (see :class:`ModelData`)."""
    if data.block is not None:
        return data.block, data.emb, data.emb_flops
    emb = embedding_side_params(data.d_model)
    return block_params(data.d_model, data.num_layers), emb, emb


def log_tokens(params: dict, data: ModelData):
    """Natural log of the tokens each API row trained on, in the model's learned convention.

    ``D = C / (6 (N_blocks + omega N_emb,flops))``; ``(M,)``. ``N_emb,flops`` is zero for rows
    whose tokens are exact (2026 runs: ``C = 6 N_blocks T``, so ``D = T``).
    """
    body, _, emb_flops = row_counts(data)
    return data.log_flops - jnp.log(6.0 * (body + params["omega"] * emb_flops))


def log_optimal_learning_rate(params: dict, block, log_d, batch_size):
    """The model's optimal learning rate, a power law in size, tokens and batch size. Broadcasts.

    ``ln lr* = l0 - a_lr ln(N_blocks / 1e7) - b_lr ln(D / 1e9) + c_bs ln(bs / 128)``, with
    ``params`` holding ``l0``, ``a_lr``, ``b_lr``, ``c_bs`` (scalars or arrays broadcasting with
    ``block``, ``log_d`` (natural log of tokens) and ``batch_size``). It can represent DESIGN.md
    section 3's truth family (``eta0 (body/1e8)^-a_eta (D/D_eta)^-b_eta``) and the published fits:
    Step Law (Li et al. 2025, ``lr* = 1.79 N^-0.713 D^0.307``, i.e. ``b_lr = -0.31``), DeepSeek
    LLM (2024, ``lr* = 0.3118 C^-0.125`` with batch ``B* = 0.292 C^0.327``: the lr falls with
    compute, partly offset by the growing batch) and Porian et al. (2024, tuned lr falling with N
    and rising with the batch at small batches); see ``PriorConfig`` for the priors.
    """
    return (
        params["l0"]
        - params["a_lr"] * jnp.log(block / LR_REF_PARAMS)
        - params["b_lr"] * (log_d - np.log(LR_REF_TOKENS))
        + params["c_bs"] * jnp.log(batch_size / LR_REF_BATCH)
    )


def core_law(params: dict, *, prior) -> LawParams:
    """The core law's ``E, A, B, alpha, beta`` from the model's centred sites (``e``, ``a_c``, ...).

    ``prior.n_ref`` and ``prior.d_ref`` undo the centring of ``a_c`` and ``b_c``.
    """
    return LawParams(
        E=jnp.exp(params["e"]),
        A=jnp.exp(params["a_c"] + params["alpha"] * np.log(prior.n_ref)),
        B=jnp.exp(params["b_c"] + params["beta"] * np.log(prior.d_ref)),
        alpha=params["alpha"],
        beta=params["beta"],
    )


def _log_optimum(params: dict, log_c, *, prior):
    """``(ln N_opt(C), ln L0*(C))`` of the core law at compute ``exp(log_c)``, in log space.

    The closed forms of :func:`optimal_allocation` and :func:`optimal_loss` with the per-draw
    constants taken out: ``ln N_opt`` is linear in ``ln C`` and, at the optimum,
    ``B D^-beta = (alpha / beta) A N^-alpha``, so ``L0* = E + (1 + alpha / beta) A N_opt^-alpha``.
    Per row that is one ``exp`` and one ``log`` instead of the eight transcendental functions
    of the forward formulas; the sampler evaluates it on every row at every leapfrog step.
    """
    alpha, beta = params["alpha"], params["beta"]
    total = alpha + beta
    log_a = params["a_c"] + alpha * np.log(prior.n_ref)
    log_b = params["b_c"] + beta * np.log(prior.d_ref)
    log_g = (jnp.log(alpha) + log_a - jnp.log(beta) - log_b) / total
    log_n = log_g + beta / total * (log_c - np.log(6.0))
    best = jnp.exp(params["e"]) + (1.0 + alpha / beta) * jnp.exp(log_a - alpha * log_n)
    return log_n, jnp.log(best)


def frontier_gap(params: dict, log_c, mu, *, prior):
    """How far above the law's compute-optimal frontier each row's mean lies: ``(M,)``, >= 0.

    ``max(0, ln mu - ln L0*(C))`` with ``L0*(C)`` the core law's minimum at the row's compute
    (closed form of :func:`optimal_loss`). Rows far from the frontier (badly tuned, far
    off-optimum) are where the law and its nuisance terms are least trustworthy; the likelihood
    of API rows widens with this gap (see :mod:`bayes_scaling.model`).
    """
    _, log_best = _log_optimum(params, log_c, prior=prior)
    return jnp.maximum(jnp.log(mu) - log_best, 0.0)


def isoflop_distance(params: dict, log_n, log_c, *, prior):
    """How far each row's size lies from the core law's optimum at its compute: ``(M,)``, >= 0.

    ``|ln N - ln N_opt(C)|`` (nats; :func:`optimal_allocation`): the row's position on its
    isoFLOP curve, which, unlike :func:`frontier_gap`, does not depend on the curvature the law
    gives that curve. The likelihood of generic rows widens with it (see
    :mod:`bayes_scaling.model`).
    """
    log_n_opt, _ = _log_optimum(params, log_c, prior=prior)
    return jnp.abs(log_n - log_n_opt)


def warmup_penalty(params: dict, x, warmup_steps):
    """Excess loss of a run whose warmup is short for its peak rate (2026 rows): ``(M,)``.

    ``c_warm (lr / lr*)^2 exp(-W / W0)`` with ``x = ln(lr / lr*)``, ``W`` the warmup steps and
    ``W0 = exp(log_w0)``. Early in training the loss is sharp and Adam's second-moment estimate
    is still noisy, so full-size updates at once overshoot: the cost of one too large a step
    grows with the square of its size (the descent lemma's second-order term, Gilmer et al.
    2022 "A loss curvature perspective on training instability"), and warmup removes it by
    letting the sharpness fall (Kalra & Barkeshli 2024, "Why warmup the learning rate?") and
    the second-moment estimate settle, which takes a fixed number of steps, about
    ``2 / (1 - beta2)`` (Ma & Yarats 2021, "On the adequacy of untuned warmup for adaptive
    optimization"; Liu et al. 2020, RAdam). A long run at a fixed warmup fraction pays nothing;
    a short one pays up to ``c_warm (lr / lr*)^2``. Without the term the loss of short runs at
    high rates can read as an optimal rate that rises with the tokens, which sends a 48-hour
    recommendation to too high a rate (``docs/api2026_simulator.md``).
    """
    return params["c_warm"] * jnp.exp(2.0 * x - warmup_steps / jnp.exp(params["log_w0"]))


def mean_loss(params: dict, data: ModelData, *, nuisance: bool, prior):
    """Model mean loss (no noise) of every row; pure JAX, vmappable over draws.

    ``params`` maps site names to scalars; ``prior`` is the model's ``PriorConfig`` (its
    ``n_ref`` and ``d_ref`` centre the power-law terms). With ``nuisance=False`` every row uses
    the core law.
    """
    log_n_ref = np.log(prior.n_ref)
    log_d_ref = np.log(prior.d_ref)
    e = params["e"]

    def core(log_n, log_d):
        return (
            jnp.exp(e)
            + jnp.exp(params["a_c"] - params["alpha"] * (log_n - log_n_ref))
            + jnp.exp(params["b_c"] - params["beta"] * (log_d - log_d_ref))
        )

    if not nuisance or data.is_config is None:  # generic rows only
        return core(data.log_n, data.log_tokens)
    body, emb, _ = row_counts(data)
    log_n_eff = jnp.log(body + params["lam"] * emb)
    log_d = log_tokens(params, data)
    log_steps = log_d - jnp.log(data.batch_size * CONTEXT_LENGTH)
    x = data.log_lr - log_optimal_learning_rate(params, body, log_d, data.batch_size)
    log_steps_eff = log_steps + params["p_lr"] * jnp.minimum(x, 0.0)
    steps_term = jnp.exp(params["k_c"] - params["gamma"] * (log_steps_eff - np.log(STEPS_REF)))
    # above lr*, an instability penalty that longer runs tolerate better (finite-step effect)
    hi_scale = params["c_hi"] * jnp.exp(-params["k_hi"] * (log_steps - np.log(STEPS_REF)))
    penalties = hi_scale * jnp.maximum(x, 0.0) ** 2
    if data.warmup_steps is not None:  # 2026 rows: a short warmup at a high rate costs
        penalties = penalties + warmup_penalty(params, x, data.warmup_steps)
    r = jnp.log(data.d_model / data.num_layers) - params["log_ar0"]
    shape = (
        1.0
        + params["c_deep"] * jnp.minimum(r, 0.0) ** 2
        + params["c_wide"] * jnp.maximum(r, 0.0) ** 2
    )
    raw = (core(log_n_eff, log_d) + steps_term + penalties) * shape
    k = params["k_cap"]
    capped = params["l_init"] - jax.nn.softplus(k * (params["l_init"] - raw)) / k
    if data.log_n is None:  # API rows only: no generic branch to evaluate
        return capped
    return jnp.where(data.is_config > 0.5, capped, core(data.log_n, data.log_tokens))

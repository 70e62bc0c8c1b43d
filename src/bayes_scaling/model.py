"""The Bayesian scaling-law model: priors, the mean-loss surface and the numpyro model.

Core law (Hoffmann et al. 2022, approach 3), written in the log-sum-exp form of Besiroglu et al.
(Epoch AI, 2024) with each power-law term centred at a reference scale so that its log-amplitude
and exponent are nearly uncorrelated under the posterior (NUTS mixes far better)::

    L0(N, D) = exp(e) + exp(a_c - alpha (ln N - ln N_ref)) + exp(b_c - beta (ln D - ln D_ref))

with ``E = exp(e)``, ``A = exp(a_c) N_ref^alpha``, ``B = exp(b_c) D_ref^beta``.

**Generic rows** (only ``n_params``, ``n_tokens``) use ``L0`` with the source's ``N`` and ``D``.

**API rows** add what real training-API data needs so that runs at off-optimal learning rates,
batch sizes and shapes do not bias ``N_opt``:

- *Embedding-aware size.* For the API's small widths the ``32000 d`` output head dominates the
  non-embedding count (d = 256, L = 4: 3.2M block parameters, 8.2M head). Kaplan et al. (2020,
  fig. 6) show that counting embedding-side parameters fully makes small models look bad, and
  Porian et al. (2024) trace part of the Kaplan/Chinchilla disagreement to this. So the law uses
  ``N_eff = N_blocks + lam N_emb`` with ``N_emb = 2 V d + 512 d`` (token and position embeddings
  plus the head) and ``lam ~ Beta(2, 4)`` learned. Tokens are ``D = C / (6 (N_blocks + omega
  N_emb))`` with ``omega ~ Beta(1.5, 3)`` learned (zero density at 0 keeps NUTS out of an
  endless logit tail), because the API's FLOP convention is not
  documented (``omega = 0`` counts block FLOPs only; ``omega ~ 0.5`` is the package's
  non-embedding convention). Outputs are always converted back to the package's convention:
  ``N`` = non-embedding parameters (DESIGN.md section 4), ``D = C / (6 N)``.
- *Optimizer steps.* ``+ K S_eff^-gamma`` with ``S = D / (batch_size * 512)``: the finite-step
  term of Kaplan et al. (2020, eq. 1.6 ``(S_c/S)^alpha_S``). It is what makes batch 256 worse than
  128 at fixed compute (half the steps) and it carries the learning-rate effect below.
- *Learning rate.* ``x = ln(lr / lr*)`` with ``lr* = exp(l0) (N_blocks / 1e8)^-a_lr`` (optimal
  learning rates fall as a power of model size: Kaplan et al. 2020 app. D.6, DeepSeek-AI 2024,
  Porian et al. 2024 sec. 4). Below the optimum progress per step scales with the learning rate
  (the ``lr x steps`` trade-off of plain SGD dynamics), so ``S_eff = S exp(p min(x, 0))``;
  above it, an instability penalty ``c_hi max(x, 0)^2``.
- *Shape.* A multiplicative ``1 + c_deep min(r, 0)^2 + c_wide max(r, 0)^2`` with
  ``r = ln(d / (L ar0))``: Kaplan et al. (2020, fig. 5) find the loss flat within a few percent
  for aspect ratios ``d/L`` of about 20-200, rising outside it.
- *Saturation.* Tiny runs cannot beat the untrained loss ``ln 32000 ~ 10.4`` (the real API's
  losses below ~1e14 FLOPs sit flat at ~10.5), so the API mean is the soft minimum
  ``l_init - softplus(k (l_init - raw)) / k`` with ``l_init`` and ``k`` learned.

**Likelihood.** Student-t on ``ln loss`` (scale ``sigma`` learned, ``PriorConfig.student_df``):
relative errors as in Epoch's Huber-on-log-loss fit, but as a proper likelihood whose heavy tails
absorb outliers (digitisation errors, the real API's regressor plateaus) instead of letting them
drag the exponents.

**Priors** (weakly informative; see :class:`PriorConfig`). Published fits: Hoffmann et al.
(2022) E = 1.69, alpha = 0.34, beta = 0.28; Epoch (2024) E = 1.82, alpha = 0.348, beta = 0.366;
their N-term at N = 1e8 is 0.77-0.79 nats and their D-term at D = 1e10 is 0.45-0.65 nats.
Priors are centred there, two to three times wider than the spread across papers and datasets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayes_scaling.errors import BayesScalingError
from bayes_scaling.features import RunFeatures

__all__ = [
    "CORE_LATENT",
    "CORE_SITES",
    "NUISANCE_LATENT",
    "NUISANCE_SITES",
    "ModelData",
    "PriorConfig",
    "make_model_data",
    "mean_loss",
    "scaling_model",
]

VOCAB_SIZE = 32000
CONTEXT_LENGTH = 512
LR_REF_PARAMS = 1e7
STEPS_REF = 1e4

#: Parameters :func:`mean_loss` reads (``a_c``, ``b_c`` are deterministic sites).
CORE_SITES = ("e", "a_c", "b_c", "alpha", "beta", "sigma")
#: Latent core sites NUTS samples (diagnostics are computed on these).
CORE_LATENT = ("e", "a_s", "b_s", "alpha", "beta", "sigma")
#: Nuisance parameters :func:`mean_loss` reads.
NUISANCE_SITES = (
    "lam", "omega", "k_c", "gamma", "l0", "a_lr", "p_lr", "c_hi",
    "c_deep", "c_wide", "log_ar0", "l_init", "k_cap",
)
#: Latent nuisance sites (``k_c`` is deterministic, from ``k_lo``).
NUISANCE_LATENT = tuple("k_lo" if s == "k_c" else s for s in NUISANCE_SITES)


class PriorConfigError(BayesScalingError, ValueError):
    """A prior setting outside its valid range."""


@dataclass(frozen=True, kw_only=True)
class PriorConfig:
    """Hyperparameters of the priors (all logs natural).

    Attributes
    ----------
    e_median, e_log_sd : float
        ``ln E ~ Normal(ln e_median, e_log_sd)``: irreducible loss, 1.69-1.82 in the Chinchilla
        fits, about 2 on C4 (Li et al. 2025); 0.5 allows 0.75-5.4 at 95%.
    n_ref, n_term_median, n_term_log_sd : float
        ``a_c = ln(A n_ref^-alpha) ~ Normal(ln n_term_median, n_term_log_sd)``: the N-term in
        nats at ``n_ref`` parameters.
    d_ref, d_term_median, d_term_log_sd : float
        Same for the D-term at ``d_ref`` tokens.
    exponent_mean, exponent_sd : float
        ``alpha, beta ~ TruncatedNormal(mean, sd, [0.05, 1.5])``; published values 0.28-0.37
        (Hoffmann 2022, Epoch 2024), Kaplan (2020) 0.076/0.095 in a form without ``E``.
    sigma_scale : float
        ``sigma ~ HalfNormal(sigma_scale)`` on ``ln loss`` (relative error).
    student_df : float
        Degrees of freedom of the Student-t likelihood. Fixed (not learned): with a few dozen
        runs ``nu`` is barely identified and a free ``nu`` slows NUTS; 5 keeps a finite variance
        and still down-weights a 5-sigma outlier ~30-fold relative to a Gaussian (Gelman et al.,
        BDA3 sec. 17.2 recommend small fixed df for robustness).
    lr_median : float
        Median prior optimal learning rate at 1e7 block parameters (``l0``): Kaplan et al.
        (2020, eq. D.1) give ~1e-3 there; the CS336 handout's default is 1e-3.
    """

    e_median: float = 1.8
    e_log_sd: float = 0.5
    n_ref: float = 1e8
    n_term_median: float = 0.7
    n_term_log_sd: float = 1.0
    d_ref: float = 1e10
    d_term_median: float = 0.5
    d_term_log_sd: float = 1.0
    exponent_mean: float = 0.35
    exponent_sd: float = 0.15
    sigma_scale: float = 0.05
    student_df: float = 5.0
    lr_median: float = 1.2e-3

    def __post_init__(self):
        for name, value in self.__dict__.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise PriorConfigError(f"{name}: expected a number, got {value!r}")
            if not np.isfinite(value) or value <= 0:
                raise PriorConfigError(f"{name}: expected a finite positive number, got {value!r}")


class ModelData(NamedTuple):
    """Padded model inputs, each a float64 array of shape ``(M_cap,)``.

    Generic rows carry ``is_config = 0`` and placeholder (finite) configuration values; padded rows
    carry ``mask = 0``. ``log_n_center`` and ``log_d_center`` (scalars) are where NUTS centres the
    power-law terms (the data's mean log size and tokens); they change the sampler's coordinates,
    not the model.
    """

    is_config: jnp.ndarray
    log_n: jnp.ndarray
    log_tokens: jnp.ndarray
    log_n_center: jnp.ndarray
    log_d_center: jnp.ndarray
    d_model: jnp.ndarray
    num_layers: jnp.ndarray
    batch_size: jnp.ndarray
    log_lr: jnp.ndarray
    log_flops: jnp.ndarray
    mask: jnp.ndarray


def make_model_data(features: RunFeatures, capacity: int | None = None) -> ModelData:
    """Turn features into :class:`ModelData`, padded with masked rows up to ``capacity``."""
    m = len(features)
    capacity = m if capacity is None else int(capacity)
    if capacity < m:
        raise BayesScalingError(f"capacity: expected at least {m} rows, got {capacity}")
    is_cfg = features.is_config

    def pad(values, fill):
        out = np.full(capacity, fill, dtype=np.float64)
        out[:m] = values
        return out

    # Centres: typical effective size and tokens of the rows (block-dominated for API rows).
    body, emb = block_and_embedding_params(features.d_model, features.num_layers)
    n_typ = np.where(is_cfg, body + 0.3 * emb, features.n_params)
    d_typ = np.where(is_cfg, features.flops / (6.0 * (body + 0.1 * emb)), features.n_tokens)
    log_n_center = float(np.mean(np.log(n_typ))) if m else float(np.log(1e8))
    log_d_center = float(np.mean(np.log(d_typ))) if m else float(np.log(1e10))
    return ModelData(
        is_config=pad(is_cfg.astype(np.float64), 0.0),
        log_n=pad(np.log(features.n_params), np.log(1e8)),
        log_tokens=pad(np.log(features.n_tokens), np.log(1e10)),
        log_n_center=np.float64(log_n_center),
        log_d_center=np.float64(log_d_center),
        d_model=pad(np.where(is_cfg, features.d_model, 256.0), 256.0),
        num_layers=pad(np.where(is_cfg, features.num_layers, 4.0), 4.0),
        batch_size=pad(np.where(is_cfg, features.batch_size, 128.0), 128.0),
        log_lr=pad(np.log(np.where(is_cfg, features.learning_rate, 1e-3)), np.log(1e-3)),
        log_flops=pad(np.log(features.flops), np.log(1e18)),
        mask=pad(np.ones(m), 0.0),
    )


def block_and_embedding_params(d_model, num_layers):
    """Return block (+ final LayerNorm) and embedding-side (tokens, positions, head) counts."""
    body = num_layers * (12.0 * d_model**2 + 7.0 * d_model) + d_model
    emb = (2.0 * VOCAB_SIZE + CONTEXT_LENGTH) * d_model
    return body, emb


def mean_loss(params: dict, data: ModelData, *, nuisance: bool, prior: PriorConfig):
    """Model mean loss (no noise) of every row; pure JAX, vmappable over draws.

    ``params`` maps site names to scalars. With ``nuisance=False`` every row uses the core law.
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

    generic = core(data.log_n, data.log_tokens)
    if not nuisance:
        return generic
    body, emb = block_and_embedding_params(data.d_model, data.num_layers)
    log_n_eff = jnp.log(body + params["lam"] * emb)
    log_d = data.log_flops - jnp.log(6.0 * (body + params["omega"] * emb))
    log_steps = log_d - jnp.log(data.batch_size * CONTEXT_LENGTH)
    log_lr_star = params["l0"] - params["a_lr"] * jnp.log(body / LR_REF_PARAMS)
    x = data.log_lr - log_lr_star
    log_steps_eff = log_steps + params["p_lr"] * jnp.minimum(x, 0.0)
    steps_term = jnp.exp(params["k_c"] - params["gamma"] * (log_steps_eff - np.log(STEPS_REF)))
    r = jnp.log(data.d_model / data.num_layers) - params["log_ar0"]
    shape = (
        1.0
        + params["c_deep"] * jnp.minimum(r, 0.0) ** 2
        + params["c_wide"] * jnp.maximum(r, 0.0) ** 2
    )
    raw = (core(log_n_eff, log_d) + steps_term + params["c_hi"] * jnp.maximum(x, 0.0) ** 2) * shape
    k = params["k_cap"]
    capped = params["l_init"] - jax.nn.softplus(k * (params["l_init"] - raw)) / k
    return jnp.where(data.is_config > 0.5, capped, generic)


def sample_params(prior: PriorConfig, data: ModelData, *, nuisance: bool) -> dict:
    """Draw every latent site from its prior inside a numpyro model; returns name -> value.

    The amplitudes are sampled at the data's centre (``a_s``, ``b_s``) and mapped back to the
    prior's reference (``a_c = a_s + alpha (log_n_center - ln n_ref)``). Since the prior puts
    ``a_c ~ Normal(m, s)`` independent of ``alpha``, ``a_s | alpha ~ Normal(m - alpha shift, s)``
    exactly: the prior is unchanged, but the likelihood no longer couples amplitude and exponent.
    """
    alpha = numpyro.sample(
        "alpha", dist.TruncatedNormal(prior.exponent_mean, prior.exponent_sd, low=0.05, high=1.5)
    )
    beta = numpyro.sample(
        "beta", dist.TruncatedNormal(prior.exponent_mean, prior.exponent_sd, low=0.05, high=1.5)
    )
    shift_n = data.log_n_center - np.log(prior.n_ref)
    shift_d = data.log_d_center - np.log(prior.d_ref)
    a_s = numpyro.sample(
        "a_s", dist.Normal(np.log(prior.n_term_median) - alpha * shift_n, prior.n_term_log_sd)
    )
    b_s = numpyro.sample(
        "b_s", dist.Normal(np.log(prior.d_term_median) - beta * shift_d, prior.d_term_log_sd)
    )
    params = {
        "e": numpyro.sample("e", dist.Normal(np.log(prior.e_median), prior.e_log_sd)),
        "a_c": numpyro.deterministic("a_c", a_s + alpha * shift_n),
        "b_c": numpyro.deterministic("b_c", b_s + beta * shift_d),
        "alpha": alpha,
        "beta": beta,
        "sigma": numpyro.sample("sigma", dist.HalfNormal(prior.sigma_scale)),
    }
    if nuisance:
        params.update(
            lam=numpyro.sample("lam", dist.Beta(2.0, 4.0)),
            omega=numpyro.sample("omega", dist.Beta(1.5, 3.0)),
            # Kaplan (2020) (S_c/S)^0.76 with S_c = 2.1e3 gives ~0.3 nats at 1e4 steps.
            gamma=numpyro.sample("gamma", dist.TruncatedNormal(0.4, 0.2, low=0.05, high=1.5)),
            l0=numpyro.sample("l0", dist.Normal(np.log(prior.lr_median), 1.0)),
            a_lr=numpyro.sample("a_lr", dist.Normal(0.3, 0.2)),
            p_lr=numpyro.sample("p_lr", dist.TruncatedNormal(1.0, 0.3, low=0.1, high=2.0)),
            c_hi=numpyro.sample("c_hi", dist.HalfNormal(0.5)),
            c_deep=numpyro.sample("c_deep", dist.HalfNormal(0.01)),
            c_wide=numpyro.sample("c_wide", dist.HalfNormal(0.01)),
            log_ar0=numpyro.sample("log_ar0", dist.Normal(np.log(80.0), 0.5)),
            l_init=numpyro.sample("l_init", dist.Normal(np.log(VOCAB_SIZE), 0.2)),
            k_cap=numpyro.sample("k_cap", dist.LogNormal(np.log(3.0), 0.5)),
        )
        # Runs below the optimal learning rate only identify k_c + gamma p_lr l0 (the steps term
        # is exp(k_c - gamma ln S - gamma p_lr (ln lr - l*))), so NUTS samples that combination,
        # k_lo, and k_c follows; k_c ~ Normal(ln 0.4, 1) (Kaplan 2020's (S_c/S)^0.76 with
        # S_c = 2.1e3 gives ~0.3 nats at 1e4 steps) becomes the exact conditional below.
        shift_k = params["gamma"] * params["p_lr"] * (params["l0"] - np.log(prior.lr_median))
        k_lo = numpyro.sample("k_lo", dist.Normal(np.log(0.4) + shift_k, 1.0))
        params["k_c"] = numpyro.deterministic("k_c", k_lo - shift_k)
    return params


def scaling_model(data: ModelData, *, prior: PriorConfig, nuisance: bool, loss=None):
    """Define the numpyro model; ``loss=None`` gives predictive draws of ``loss``.

    Parameters
    ----------
    data : ModelData
        Padded inputs; rows with ``mask = 0`` do not enter the likelihood.
    prior : PriorConfig
    nuisance : bool
        Whether the API nuisance terms are in the model (static: any API row present).
    loss : array of shape (M_cap,), optional
        Observed final losses (any positive placeholder on padded rows).
    """
    params = sample_params(prior, data, nuisance=nuisance)
    mu = mean_loss(params, data, nuisance=nuisance, prior=prior)
    numpyro.deterministic("E", jnp.exp(params["e"]))
    numpyro.deterministic("A", jnp.exp(params["a_c"] + params["alpha"] * np.log(prior.n_ref)))
    numpyro.deterministic("B", jnp.exp(params["b_c"] + params["beta"] * np.log(prior.d_ref)))
    log_loss = None if loss is None else jnp.log(loss)
    with numpyro.handlers.mask(mask=data.mask > 0.5):
        log_obs = numpyro.sample(
            "log_loss",
            dist.StudentT(prior.student_df, jnp.log(mu), params["sigma"]),
            obs=log_loss,
        )
    if loss is None:
        numpyro.deterministic("loss", jnp.exp(log_obs))

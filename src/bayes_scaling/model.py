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
- *Learning rate.* ``x = ln(lr / lr*)`` with ``ln lr* = l0 - a_lr ln(N_blocks / 1e7)
  - b_lr ln(D / 1e9) + c_bs ln(bs / 128)`` (:func:`bayes_scaling.law.log_optimal_learning_rate`):
  optimal learning rates fall as a power of model size (Kaplan et al. 2020 app. D.6, DeepSeek-AI
  2024, Porian et al. 2024 sec. 4) and move with the training length and the batch (Step Law,
  Li et al. 2025: ``lr* ∝ N^-0.713 D^0.307``; DeepSeek-AI 2024: ``lr* ∝ C^-0.125`` with the
  batch growing as ``C^0.327``; Malladi et al. 2022's square-root rule for Adam). Below the
  optimum progress per step scales with the learning rate (the ``lr x steps`` trade-off of plain
  SGD dynamics), so ``S_eff = S exp(p min(x, 0))``; above it, an instability penalty
  ``c_hi (S / 1e4)^-k_hi max(x, 0)^2`` that longer runs (more steps to recover from early
  spikes) tolerate better.
- *Shape.* A multiplicative ``1 + c_deep min(r, 0)^2 + c_wide max(r, 0)^2`` with
  ``r = ln(d / (L ar0))``: Kaplan et al. (2020, fig. 5) find the loss flat within a few percent
  for aspect ratios ``d/L`` of about 20-200, rising outside it.
- *Saturation.* Tiny runs cannot beat the untrained loss ``ln 32000 ~ 10.4`` (the real API's
  losses below ~1e14 FLOPs sit flat at ~10.5), so the API mean is the soft minimum
  ``l_init - softplus(k (l_init - raw)) / k`` with ``l_init`` and ``k`` learned.

**2026 job-API rows** (:func:`bayes_scaling.candidates2026.law_features`; they state their
schedule, so :class:`~bayes_scaling.features.RunFeatures` carries ``warmup_steps``) get two more
things, and nothing else changes (2025 and generic rows carry no ``warmup_steps`` and keep the
model above bit for bit):

- *Warmup.* ``+ c_warm (lr / lr*)^2 exp(-W / W0)`` inside the shape factor, ``W`` the run's
  warmup steps (:func:`bayes_scaling.law.warmup_penalty`, which cites the literature), sites
  :data:`WARMUP_SITES`. The 2026 loop varies the warmup fraction and the run length together, so
  without it the extra loss of short runs at high rates can read as an optimal learning rate
  that rises with the tokens (``b_lr < 0``), which sends a 48-hour run to too high a rate.
- *Early plateau.* The soft saturation's level ``l_init`` takes the prior
  ``Normal(plateau_mean, plateau_sd)`` = ``Normal(7.3, 0.5)``, the unigram entropy of the data
  (:class:`PriorConfig`), instead of the untrained ``ln 32000``: real learning curves drop to
  the unigram plateau within a few dozen steps (the 2025 API's regressor sat at ``ln 32000``
  instead), and the loop's shortest runs end there. Capped at ``ln 32000`` the law bends its
  exponents to reach them: fitted on the default 2026 truth's noise-free final losses of the
  runs the loop bought with the model before these terms, it had ``E`` 1.18 and ``beta`` 0.13
  (truth 2.4, 0.28) and predicted the 48-hour loss 0.31 too low; with the plateau, ``E`` 2.58,
  ``beta`` 0.33 and +0.055 (``experiments/results/run2026_extrapolation_before.md``).

**Likelihood.** Student-t on ``ln loss`` (``PriorConfig.student_df``): relative errors as in
Epoch's Huber-on-log-loss fit, but as a proper likelihood whose heavy tails absorb outliers
(digitisation errors, the real API's regressor plateaus) instead of letting them drag the
exponents. Its scale widens with the row's distance from the compute-optimal frontier::

    scale_i = sigma * (1 + s_far * g_i)

``s_far ~ HalfNormal(far_scale)`` learned, and the distance ``g_i`` measured two ways:

- API rows: ``g_i = max(0, ln mu_i - ln L0*(C_i))`` (:func:`bayes_scaling.law.frontier_gap`:
  how far, in log loss, the row's mean lies above the core law's minimum at its compute), since
  what puts them off the frontier is mostly a badly tuned learning rate, batch or shape, which
  the nuisance terms price in loss;
- generic rows: ``g_i = |ln N_i - ln N_opt(C_i)|`` (:func:`bayes_scaling.law.isoflop_distance`:
  nats of size between the row and the core law's optimum at its compute), the row's place on
  its isoFLOP curve. The loss gap does not serve them: it is measured by the law whose
  curvature the far rows set, so a law bent to fit them places them near its own frontier and
  does not widen them. On Porian et al. 2024's no-decay set (constant learning rate, so the
  largest models at each budget are badly under-trained, 10-30% above the law) the far rows then
  inflated ``sigma`` fourfold (0.048 against 0.012 on the cosine set), the frontier rows got no
  more weight than the far ones, and ``N_opt`` came out 0.59-0.71x the held-out isoFLOP vertex
  (1 of 4 budgets inside its 90% interval); with the isoFLOP distance ``sigma`` is 0.014 and
  ``N_opt`` 0.73-0.85x (4 of 4 inside), and on the cosine set 0.85-0.92x (4 of 4, was 2 of 4;
  ``experiments/results/extrapolation_check.md``). It is the likelihood's version of what
  Approach 2 of Hoffmann et al. (2022) and Porian et al. (2024) do when they fit each isoFLOP
  curve near its minimum only, without a cut-off to choose.

A discrepancy that grows away from the frontier rather than a mixture: what decides ``N_opt`` is
the frontier, and the rows far from it (badly tuned learning rates, far off-optimum sizes,
saturated tiny runs) are exactly where the law's form and its nuisance terms are least right
(Porian et al. 2024's no-decay set; the real API's plateaus), so their misfit should cost less,
smoothly, without a discrete outlier class that NUTS mixes over badly and without discarding
the information they carry about the nuisance terms (lr* and the shape penalties are learned
from them). Multiplicative in ``sigma`` rather than added in quadrature: with an additive term
the frontier rows of the real (deterministic) API let ``sigma`` collapse towards 0 while
``s_far`` carried the rest, a funnel NUTS could not mix (r-hat 2.5 on the 2025 API rows).

**Priors** (weakly informative; see :class:`PriorConfig`). Published fits: Hoffmann et al.
(2022) E = 1.69, alpha = 0.34, beta = 0.28; Epoch (2024) E = 1.82, alpha = 0.348, beta = 0.366;
their N-term at N = 1e8 is 0.77-0.79 nats and their D-term at D = 1e10 is 0.45-0.65 nats.
Priors are centred there, two to three times wider than the spread across papers and datasets.

**Extrapolation discrepancy** (predictive only; see :func:`extrapolation_distance`). The law is an
approximation, and fits of it miss held-out larger runs by more than their parameter uncertainty
says (the posterior of a misspecified model concentrates on the best wrong law). So predictions
beyond the data carry a model-discrepancy term on ``ln loss`` (Kennedy & O'Hagan 2001)::

    ln L_pred = ln mu + tau * u * z,   u = max(0, ln N/N_max, ln D/D_max, ln C/C_max)

``u`` is how far (in nats of the most extrapolated of size, tokens and compute) a prediction lies
beyond the largest fitted runs; ``z ~ Normal(0, 1)``, one per posterior draw, shared by every
prediction of that draw (the law's error is systematic). The sd ``tau u`` grows linearly with
the log-distance (:func:`discrepancy_shape`): an error in the law's log-log slope that persists
beyond the data's edge (the exponents are fitted over a few decades; curvature the law lacks
bends the curve the same way for every further decade). The held-out runs favour this over the
``tau sqrt(u)`` of a random walk, used before, by a log Bayes factor of about 57 (marginal
likelihood of the held-out residuals of the eight splits below under the hierarchical model of
the calibration, -58.4 against -115.3): Porian et al.'s cosine set, for one, misses its larger
budgets by -1%, -2%, -3.5% and -5% at ``u`` = 0.7, 1.4, 2.1, 2.8.

It is zero inside the data, so it cannot enter the likelihood (every fitted run has ``u = 0``),
and each posterior draw takes one prior draw ``tau ~ LogNormal(ln tau_median, tau_log_sd)``, a
scale mixture with heavier tails than a normal. Its prior is learned from held-out larger runs
instead: ``experiments/calibrate_discrepancy.py`` fits the smaller runs of eight splits of five
public data sets (Chinchilla, Li et al. 2025, Gadre et al. 2024 x 3, Porian et al. 2024's
cosine-decay and no-decay sets, the 2025 course API rows), predicts their larger runs, and fits a
hierarchical model to the residuals: one scale per data set, ``ln tau_k ~ Normal(m, s)`` across
data sets; the prior of a new fit is the posterior predictive of a new data set's ``ln tau``
(Gelman et al., BDA3 ch. 5), ``tau_median = 0.015``, ``tau_log_sd = 1``
(``experiments/results/discrepancy_calibration.md``). The wide ``tau_log_sd`` is the spread
between data sets: their own maximum-likelihood scales run from under 0.001 (Gadre) through
0.006 (Chinchilla) and 0.01 (Li) to 0.024-0.029 (Porian, the course API rows). So one scale does
not serve all; the mixture's 90% interval (about ``+-0.047 u``) is close to what a single scale
of 0.029 would give, while its 50% interval (``+-0.009 u``) stays narrow, as most data sets need.
Leave-one-dataset-out (each data set predicted with the prior learnt without it) the 90%
intervals cover 85.0% of the 120 held-out runs pooled (87.5% in-sample; the previous rule, the
smallest ``tau_median`` covering 90% pooled with ``tau_log_sd = 0.5``: 80.8%); the course API
rows are the one data set under-covered (8 of 26 leave-one-out, 11 of 26 at the default),
because what they need is not seen in the others.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayes_scaling.errors import BayesScalingError
from bayes_scaling.features import RunFeatures
from bayes_scaling.law import ModelData, frontier_gap, isoflop_distance, mean_loss
from bayes_scaling.params import VOCAB_SIZE, block_params, embedding_side_params

__all__ = [
    "CORE_LATENT",
    "DataRange",
    "CORE_SITES",
    "NUISANCE_LATENT",
    "NUISANCE_SITES",
    "WARMUP_SITES",
    "ModelData",
    "discrepancy_shape",
    "extrapolation_distance",
    "likelihood_scale",
    "PriorConfig",
    "make_model_data",
    "sample_discrepancy",
    "mean_loss",
    "scaling_model",
]

#: Parameters :func:`mean_loss` reads (``a_c``, ``b_c`` are deterministic sites).
CORE_SITES = ("e", "a_c", "b_c", "alpha", "beta", "sigma", "s_far")
#: Latent core sites NUTS samples (diagnostics are computed on these).
CORE_LATENT = ("e", "a_s", "b_s", "alpha", "beta", "sigma", "s_far")
#: Nuisance parameters :func:`mean_loss` reads.
NUISANCE_SITES = (
    "lam", "omega", "k_c", "gamma", "l0", "a_lr", "b_lr", "c_bs", "p_lr", "c_hi", "k_hi",
    "c_deep", "c_wide", "log_ar0", "l_init", "k_cap",
)
#: Latent nuisance sites (``k_c`` is deterministic, from ``k_lo``).
NUISANCE_LATENT = tuple("k_lo" if s == "k_c" else s for s in NUISANCE_SITES)
#: The 2026 job-API rows' extra sites (latent, read by :func:`bayes_scaling.law.warmup_penalty`):
#: present only when the data carry ``warmup_steps``.
WARMUP_SITES = ("c_warm", "log_w0")
#: Warmup steps of 2026 rows that state no schedule, and of padding: long enough that
#: ``exp(-W / W0)`` is exactly 0 (finite, so that its gradient is 0 rather than NaN).
_LONG_WARMUP = 1e12


#: Prior settings that may be zero (``tau_median``: no discrepancy) or negative (location means).
_MAY_BE_ZERO_OR_NEGATIVE = ("tau_median", "b_lr_mean", "c_bs_mean", "a_lr_mean")


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
    alpha_mean, alpha_sd, beta_mean, beta_sd : float
        ``alpha ~ TruncatedNormal(alpha_mean, alpha_sd, [exponent_low, exponent_high])``, the
        same for ``beta``; published values 0.28-0.37 (Hoffmann 2022, Epoch 2024), Kaplan (2020)
        0.076/0.095 in a form without ``E``. Learnt across the public sets instead
        (``experiments/calibrate_exponents.py``: alpha N(0.25, 0.17), beta N(0.47, 0.22)), the
        priors are no tighter, and used leave-one-dataset-out they change nothing the held-out
        checks see (``experiments/results/extrapolation_check_lodo.md``: Porian and course API
        rows covered 67/82, as with these defaults; optimal-loss errors 0.107 and 0.235 on
        Porian against 0.103 and 0.229), so the defaults stay.
    sigma_scale : float
        ``sigma ~ HalfNormal(sigma_scale)`` on ``ln loss`` (relative error).
    far_scale : float
        ``s_far ~ HalfNormal(far_scale)``: how fast the likelihood's scale widens with the distance
        from the frontier (module docstring); at the prior's median (~0.67) a saturated tiny run
        (0.5 nats of log loss above the frontier) has 1.3x the frontier's scale, at its 95th
        percentile (~2) twice; the data can switch it off. A wider prior (5) mixed worse on
        generic rows scattered off the frontier (r-hat 1.012 at 2 x 500 draws on the slow
        Chinchilla recovery test, 1.009 with 1).
    student_df : float
        Degrees of freedom of the Student-t likelihood. Fixed (not learned): with a few dozen
        runs ``nu`` is barely identified and a free ``nu`` slows NUTS; 5 keeps a finite variance
        and still down-weights a 5-sigma outlier ~30-fold relative to a Gaussian (Gelman et al.,
        BDA3 sec. 17.2 recommend small fixed df for robustness).
    lr_median : float
        Median prior optimal learning rate at 1e7 block parameters (``l0``): Kaplan et al.
        (2020, eq. D.1) give ~1e-3 there; the CS336 handout's default is 1e-3.
    tau_median, tau_log_sd : float
        Prior of the extrapolation discrepancy scale ``tau ~ LogNormal(ln tau_median,
        tau_log_sd)`` (relative standard deviation per nat beyond the data). Both are
        calibrated, hierarchically across data sets, on held-out larger runs of real data
        (``experiments/calibrate_discrepancy.py``, the values in
        ``experiments/results/discrepancy_calibration.json``; see the module docstring).
        ``tau_median = 0`` switches the discrepancy off (predictions then carry parameter
        uncertainty and noise only).
    exponent_low, exponent_high : float
        Truncation of ``alpha``, ``beta`` and ``gamma``.

    The API nuisance terms (only fitted when API rows are present; see the module docstring):

    lam_beta_a, lam_beta_b : float
        ``lam ~ Beta(a, b)``, the weight of embedding-side parameters in ``N_eff``.
    omega_beta_a, omega_beta_b : float
        ``omega ~ Beta(a, b)``, their weight in the token count (zero density at 0).
    gamma_mean, gamma_sd : float
        ``gamma ~ TruncatedNormal(mean, sd, [exponent_low, exponent_high])``, the steps exponent.
    lr_log_sd : float
        ``l0 ~ Normal(ln lr_median, lr_log_sd)``.
    a_lr_mean, a_lr_sd : float
        ``a_lr ~ Normal(mean, sd)``, the exponent of ``lr* ∝ N_blocks^-a_lr``: published fits
        span 0.25 (DeepSeek-AI 2024's ``C^-0.125`` at ``N ∝ C^0.5``) to 0.71 (Step Law, Li et
        al. 2025); Kaplan et al. (2020, eq. D.1) are near 0.3 at these sizes.
    b_lr_mean, b_lr_sd : float
        ``b_lr ~ Normal(mean, sd)``, the tokens exponent of ``lr* ∝ D^-b_lr``: Step Law's
        ``D^0.307`` is ``b_lr = -0.31``; fits with a fixed number of tokens per parameter
        (Porian et al. 2024) fold it into ``a_lr``, i.e. ``b_lr = 0``. Centred between them,
        wide enough for both signs.
    c_bs_mean, c_bs_sd : float
        ``c_bs ~ Normal(mean, sd)``, ``lr* ∝ bs^c_bs``: the square-root rule for Adam (Malladi et
        al. 2022) is 0.5 at small batches; Step Law finds ``lr*`` nearly flat in the batch at
        fixed N and D (0). Centred between them.
    p_lr_mean, p_lr_sd, p_lr_low, p_lr_high : float
        ``p_lr ~ TruncatedNormal(mean, sd, [low, high])``, progress per step below ``lr*``.
    c_hi_scale, c_deep_scale, c_wide_scale : float
        ``HalfNormal`` scales of the high-lr penalty (at 1e4 steps) and the deep / wide shape
        penalties.
    k_hi_mean, k_hi_sd, k_hi_high : float
        ``k_hi ~ TruncatedNormal(mean, sd, [0, high])``: the high-lr penalty scales as
        ``(S / 1e4)^-k_hi`` with the optimizer steps ``S``.
    ar0_median, ar0_log_sd : float
        ``log_ar0 ~ Normal(ln ar0_median, ar0_log_sd)``, the best aspect ratio ``d / L``.
    l_init_mean, l_init_sd : float
        ``l_init ~ Normal(mean, sd)``, the untrained loss (``ln 32000`` nats).
    k_cap_median, k_cap_log_sd : float
        ``k_cap ~ LogNormal(ln median, log_sd)``, the sharpness of the soft saturation.
    k_c_median, k_c_log_sd : float
        ``k_c ~ Normal(ln median, log_sd)``: the finite-step term in nats at 1e4 steps (Kaplan
        et al. 2020's ``(S_c/S)^0.76`` with ``S_c = 2.1e3`` gives ~0.3).

    The 2026 job-API rows' terms (only where the rows carry ``warmup_steps``; see the module
    docstring):

    plateau_mean, plateau_sd : float
        ``l_init ~ Normal(mean, sd)`` on 2026 rows, in place of ``l_init_mean``/``l_init_sd``:
        the level the soft saturation caps at is the early plateau of real learning curves, not
        the untrained ``ln V``. Networks learn the unigram statistics first (Belrose et al.
        2024, "Neural networks learn statistics of increasing complexity"), so within a few
        dozen steps the loss falls from ``ln 32000 = 10.4`` to about the unigram entropy of the
        data and only then follows the power laws; short runs end there. Centred at the
        entropy of a Zipf law of exponent 1 over the 32000 tokens (Piantadosi 2014, "Zipf's
        word frequency law in natural language"): ``ln H_V + sum_k ln(k) / (k H_V)`` = 7.3 nats
        with ``H_V = sum_k 1/k``; the spec's published run ends at 7.19 after 8.4M tokens. The
        sd allows 6.3-8.3 at 95%; a wider prior (sd 1) let a single chain settle in a second
        mode at 9.5 where the warmup term, not the plateau, explains the short runs.
    c_warm_scale : float
        ``c_warm ~ HalfNormal(scale)``: the cost in nats of no warmup at the optimal rate
        (:func:`bayes_scaling.law.warmup_penalty`).
    warmup_w0_median, warmup_w0_log_sd : float
        ``log_w0 ~ Normal(ln median, log_sd)``: the warmup steps over which that cost decays;
        centred at Ma & Yarats (2021)'s ``2 / (1 - beta2)`` = 40 steps for the loop's AdamW
        (``beta2 = 0.95``), a factor ``e`` either way at one sd.
    """

    e_median: float = 1.8
    e_log_sd: float = 0.5
    n_ref: float = 1e8
    n_term_median: float = 0.7
    n_term_log_sd: float = 1.0
    d_ref: float = 1e10
    d_term_median: float = 0.5
    d_term_log_sd: float = 1.0
    alpha_mean: float = 0.35
    alpha_sd: float = 0.15
    beta_mean: float = 0.35
    beta_sd: float = 0.15
    sigma_scale: float = 0.05
    far_scale: float = 1.0
    student_df: float = 5.0
    lr_median: float = 1.2e-3
    tau_median: float = 0.015
    tau_log_sd: float = 1.0
    exponent_low: float = 0.05
    exponent_high: float = 1.5
    lam_beta_a: float = 2.0
    lam_beta_b: float = 4.0
    omega_beta_a: float = 1.5
    omega_beta_b: float = 3.0
    gamma_mean: float = 0.4
    gamma_sd: float = 0.2
    lr_log_sd: float = 1.0
    a_lr_mean: float = 0.4
    a_lr_sd: float = 0.2
    b_lr_mean: float = -0.1
    b_lr_sd: float = 0.25
    c_bs_mean: float = 0.25
    c_bs_sd: float = 0.25
    p_lr_mean: float = 1.0
    p_lr_sd: float = 0.3
    p_lr_low: float = 0.1
    p_lr_high: float = 2.0
    c_hi_scale: float = 0.5
    k_hi_mean: float = 0.5
    k_hi_sd: float = 0.5
    k_hi_high: float = 2.0
    c_deep_scale: float = 0.01
    c_wide_scale: float = 0.01
    ar0_median: float = 80.0
    ar0_log_sd: float = 0.5
    l_init_mean: float = float(np.log(VOCAB_SIZE))
    l_init_sd: float = 0.2
    k_cap_median: float = 3.0
    k_cap_log_sd: float = 0.5
    k_c_median: float = 0.4
    k_c_log_sd: float = 1.0
    plateau_mean: float = 7.3
    plateau_sd: float = 0.5
    c_warm_scale: float = 0.2
    warmup_w0_median: float = 40.0
    warmup_w0_log_sd: float = 1.0

    @classmethod
    def from_saved(cls, values: dict) -> PriorConfig:
        """The priors a ``report.json`` recorded, old or new.

        A report written before ``alpha`` and ``beta`` had separate priors records a shared
        ``exponent_mean``/``exponent_sd``; they apply to both.
        """
        values = dict(values)
        for old, part in (("exponent_mean", "mean"), ("exponent_sd", "sd")):
            if old in values:
                shared = values.pop(old)
                for name in (f"alpha_{part}", f"beta_{part}"):
                    values.setdefault(name, shared)
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise PriorConfigError(f"saved prior: unknown hyperparameters {', '.join(unknown)}")
        return cls(**values)

    def __post_init__(self):
        for name, value in self.__dict__.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise PriorConfigError(f"{name}: expected a number, got {value!r}")
            if name in _MAY_BE_ZERO_OR_NEGATIVE and np.isfinite(value):
                if name != "tau_median" or value >= 0:
                    continue
            if not np.isfinite(value) or value <= 0:
                raise PriorConfigError(f"{name}: expected a finite positive number, got {value!r}")


def make_model_data(features: RunFeatures, capacity: int | None = None, *,
                    generic_law: bool = False) -> ModelData:
    """Turn features into :class:`ModelData`, padded with masked rows up to ``capacity``.

    ``generic_law``: keep ``log_n`` and ``log_tokens`` even where every row is an API row (a
    posterior fitted without the nuisance terms predicts such rows by the core law alone).
    """
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
    # (generic and padded rows hold the counts of the placeholder shape d 256, L 4)
    body_fill, emb_fill = float(block_params(256.0, 4.0)), float(embedding_side_params(256.0))
    body = np.where(is_cfg, features.block_params, body_fill)
    emb = np.where(is_cfg, features.embedding_params, emb_fill)
    emb_flops = np.where(is_cfg, features.flops_embedding_params, emb_fill)
    n_typ = np.where(is_cfg, body + 0.3 * emb, features.n_params)
    d_typ = np.where(is_cfg, features.flops / (6.0 * (body + 0.1 * emb_flops)), features.n_tokens)
    log_n_center = float(np.mean(np.log(n_typ))) if m else float(np.log(1e8))
    log_d_center = float(np.mean(np.log(d_typ))) if m else float(np.log(1e10))
    # None where a branch has no row (see ModelData): its terms then stay out of the graph
    generic_rows = bool(generic_law or m == 0 or not np.all(is_cfg))
    config_rows = bool(np.any(is_cfg))
    return ModelData(
        is_config=pad(is_cfg.astype(np.float64), 0.0) if config_rows else None,
        log_n=pad(np.log(features.n_params), np.log(1e8)) if generic_rows else None,
        log_tokens=pad(np.log(features.n_tokens), np.log(1e10)) if generic_rows else None,
        log_n_center=np.float64(log_n_center),
        log_d_center=np.float64(log_d_center),
        d_model=pad(np.where(is_cfg, features.d_model, 256.0), 256.0),
        num_layers=pad(np.where(is_cfg, features.num_layers, 4.0), 4.0),
        batch_size=pad(np.where(is_cfg, features.batch_size, 128.0), 128.0),
        log_lr=pad(np.log(np.where(is_cfg, features.learning_rate, 1e-3)), np.log(1e-3)),
        log_flops=pad(np.log(features.flops), np.log(1e18)),
        mask=pad(np.ones(m), 0.0),
        # 2025 rows: None, the law computes its closed forms in the graph, bit for bit as before
        **({} if features.family.api == "2025" else dict(
            block=pad(body, body_fill), emb=pad(emb, emb_fill),
            emb_flops=pad(emb_flops, emb_fill),
            # 2026 rows without a stated schedule and padding pay no warmup cost
            warmup_steps=pad(_LONG_WARMUP if features.warmup_steps is None else
                             np.where(is_cfg, features.warmup_steps, _LONG_WARMUP),
                             _LONG_WARMUP))),
    )


@dataclass(frozen=True, kw_only=True)
class DataRange:
    """Largest natural-log size, tokens and compute of the fitted runs (the data's edge).

    ``N`` and ``D`` are in the features' units: non-embedding parameters and package tokens for
    API rows, the source's counts for generic rows.
    """

    log_n_max: float
    log_d_max: float
    log_c_max: float

    @classmethod
    def from_features(cls, features: RunFeatures) -> DataRange:
        """The edge of ``features`` (at least one row)."""
        if len(features) < 1:
            raise BayesScalingError("features: expected at least one run, got 0")
        return cls(
            log_n_max=float(np.log(np.max(features.n_params))),
            log_d_max=float(np.log(np.max(features.n_tokens))),
            log_c_max=float(np.log(np.max(features.flops))),
        )


def extrapolation_distance(data_range: DataRange, n_params, n_tokens, flops) -> np.ndarray:
    """How far beyond the data a prediction lies: ``max(0, ln N/N_max, ln D/D_max, ln C/C_max)``.

    The most extrapolated of the three axes counts: a larger model at the data's compute (the
    held-out Chinchilla runs) is as much an extrapolation as a compute-optimal run at 100x the
    compute (where ``ln C/C_max = ln N/N_max + ln D/D_max`` along the optimal path, while
    ``N_opt`` may even lie inside the data's sizes). Downward extrapolation (smaller than any
    fitted run) is not penalised: the saturation and nuisance terms model that end. Broadcasts.
    """
    log_n = np.log(np.asarray(n_params, dtype=np.float64))
    log_d = np.log(np.asarray(n_tokens, dtype=np.float64))
    log_c = np.log(np.asarray(flops, dtype=np.float64))
    return np.maximum.reduce([
        np.zeros(np.broadcast(log_n, log_d, log_c).shape),
        log_n - data_range.log_n_max,
        log_d - data_range.log_d_max,
        log_c - data_range.log_c_max,
    ])


def discrepancy_shape(u):
    """How the discrepancy's sd on ``ln loss`` grows with the distance ``u`` beyond the data.

    ``u`` itself: ``ln L_pred = ln mu + tau u z`` (see the module docstring; linear, an error in
    the law's log-log slope that persists beyond the data, rather than the ``sqrt(u)`` of a
    random walk: the held-out runs favour it by a log Bayes factor of ~57). Broadcasts.
    """
    return np.asarray(u, dtype=np.float64)


def sample_discrepancy(rng_key, prior: PriorConfig, num_draws: int) -> dict[str, np.ndarray]:
    """Prior draws of the discrepancy: ``tau_x`` (scale) and ``z_x`` (standard normal), ``(S,)``.

    One pair per posterior draw; the data do not inform them (see the module docstring).
    """
    key_tau, key_z = jax.random.split(rng_key)
    if prior.tau_median > 0:
        tau = prior.tau_median * np.exp(
            prior.tau_log_sd * np.asarray(jax.random.normal(key_tau, (num_draws,)))
        )
    else:
        tau = np.zeros(num_draws)
    return {"tau_x": tau, "z_x": np.asarray(jax.random.normal(key_z, (num_draws,)))}


def sample_params(prior: PriorConfig, data: ModelData, *, nuisance: bool) -> dict:
    """Draw every latent site from its prior inside a numpyro model; returns name -> value.

    The amplitudes are sampled at the data's centre (``a_s``, ``b_s``) and mapped back to the
    prior's reference (``a_c = a_s + alpha (log_n_center - ln n_ref)``). Since the prior puts
    ``a_c ~ Normal(m, s)`` independent of ``alpha``, ``a_s | alpha ~ Normal(m - alpha shift, s)``
    exactly: the prior is unchanged, but the likelihood no longer couples amplitude and exponent.
    """
    def truncated(mean, sd, low=prior.exponent_low, high=prior.exponent_high):
        return dist.TruncatedNormal(mean, sd, low=low, high=high)

    alpha = numpyro.sample("alpha", truncated(prior.alpha_mean, prior.alpha_sd))
    beta = numpyro.sample("beta", truncated(prior.beta_mean, prior.beta_sd))
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
        "s_far": numpyro.sample("s_far", dist.HalfNormal(prior.far_scale)),
    }
    if nuisance:
        params.update(
            lam=numpyro.sample("lam", dist.Beta(prior.lam_beta_a, prior.lam_beta_b)),
            omega=numpyro.sample("omega", dist.Beta(prior.omega_beta_a, prior.omega_beta_b)),
            gamma=numpyro.sample("gamma", truncated(prior.gamma_mean, prior.gamma_sd)),
            l0=numpyro.sample("l0", dist.Normal(np.log(prior.lr_median), prior.lr_log_sd)),
            a_lr=numpyro.sample("a_lr", dist.Normal(prior.a_lr_mean, prior.a_lr_sd)),
            b_lr=numpyro.sample("b_lr", dist.Normal(prior.b_lr_mean, prior.b_lr_sd)),
            c_bs=numpyro.sample("c_bs", dist.Normal(prior.c_bs_mean, prior.c_bs_sd)),
            p_lr=numpyro.sample("p_lr", truncated(prior.p_lr_mean, prior.p_lr_sd,
                                                  prior.p_lr_low, prior.p_lr_high)),
            c_hi=numpyro.sample("c_hi", dist.HalfNormal(prior.c_hi_scale)),
            k_hi=numpyro.sample("k_hi", truncated(prior.k_hi_mean, prior.k_hi_sd, 0.0,
                                                  prior.k_hi_high)),
            c_deep=numpyro.sample("c_deep", dist.HalfNormal(prior.c_deep_scale)),
            c_wide=numpyro.sample("c_wide", dist.HalfNormal(prior.c_wide_scale)),
            log_ar0=numpyro.sample("log_ar0", dist.Normal(np.log(prior.ar0_median),
                                                          prior.ar0_log_sd)),
            l_init=numpyro.sample("l_init", dist.Normal(*(
                (prior.l_init_mean, prior.l_init_sd) if data.warmup_steps is None
                else (prior.plateau_mean, prior.plateau_sd)))),
            k_cap=numpyro.sample("k_cap", dist.LogNormal(np.log(prior.k_cap_median),
                                                         prior.k_cap_log_sd)),
        )
        # Runs below the optimal learning rate only identify k_c + gamma p_lr l0 (the steps term
        # is exp(k_c - gamma ln S - gamma p_lr (ln lr - l*))), so NUTS samples that combination,
        # k_lo, and k_c follows; k_c ~ Normal(ln k_c_median, k_c_log_sd) becomes the exact
        # conditional below.
        shift_k = params["gamma"] * params["p_lr"] * (params["l0"] - np.log(prior.lr_median))
        k_lo = numpyro.sample("k_lo", dist.Normal(np.log(prior.k_c_median) + shift_k,
                                                  prior.k_c_log_sd))
        params["k_c"] = numpyro.deterministic("k_c", k_lo - shift_k)
        if data.warmup_steps is not None:  # 2026 rows (WARMUP_SITES)
            params.update(
                c_warm=numpyro.sample("c_warm", dist.HalfNormal(prior.c_warm_scale)),
                log_w0=numpyro.sample("log_w0", dist.Normal(np.log(prior.warmup_w0_median),
                                                            prior.warmup_w0_log_sd)),
            )
    return params


def likelihood_scale(params: dict, data: ModelData, mu, *, prior: PriorConfig):
    """Per-row scale of the Student-t on ``ln loss``: ``sigma (1 + s_far g)``, ``(M,)``.

    ``g`` is the row's distance from the frontier (see the module docstring): for API rows the
    loss gap :func:`bayes_scaling.law.frontier_gap`, for generic rows the isoFLOP distance
    :func:`bayes_scaling.law.isoflop_distance`.
    """
    if data.is_config is None:  # generic rows only
        gap = isoflop_distance(params, data.log_n, data.log_flops, prior=prior)
    elif data.log_n is None:  # API rows only
        gap = frontier_gap(params, data.log_flops, mu, prior=prior)
    else:
        gap = jnp.where(data.is_config > 0.5,
                        frontier_gap(params, data.log_flops, mu, prior=prior),
                        isoflop_distance(params, data.log_n, data.log_flops, prior=prior))
    return params["sigma"] * (1.0 + params["s_far"] * gap)


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
            dist.StudentT(prior.student_df, jnp.log(mu), likelihood_scale(params, data, mu,
                                                                          prior=prior)),
            obs=log_loss,
        )
    if loss is None:
        numpyro.deterministic("loss", jnp.exp(log_obs))

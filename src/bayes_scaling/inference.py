"""NUTS fits of the scaling-law model, posterior summaries and diagnostics.

:func:`fit_posterior` fits once. :class:`Refitter` keeps one compiled sampler per padded capacity
(the next power of two, at least ``NutsConfig.min_capacity``) so the active-learning loop can refit
after every new observation without recompiling: the data enter the compiled sampler as arguments
of a fixed shape, padded rows masked out of the likelihood.

Conventions of :class:`Posterior`: ``N`` is the non-embedding parameter count of DESIGN.md section
4 (``param_count = "non_embedding"``), ``D = flops / (6 N)``. The law's ``A``, ``B`` and
``alpha``, ``beta`` from :meth:`Posterior.law_params` are in the model's internal units: for
generic rows the source's ``N`` and ``D``; for API rows the embedding-aware ``N_eff`` and the
learned token convention of :mod:`bayes_scaling.model`.

Predictions beyond the data carry the extrapolation discrepancy of :mod:`bayes_scaling.model`
(zero inside the data's range): :meth:`Posterior.sample_predictive`, :meth:`Posterior.predictive_sd`
and ``OptimumDraws.loss`` include it; :meth:`Posterior.predict_mean` (the law's mean),
:meth:`Posterior.noise_sd` (the noise of one new observation, which acquisition needs) and
``OptimumDraws.law_loss`` do not.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from functools import partial

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import init_to_median
from numpyro.infer.hmc import hmc
from numpyro.infer.util import initialize_model

from bayes_scaling.errors import BayesScalingError
from bayes_scaling.features import RunFeatures
from bayes_scaling.law import LawParams, optimal_allocation
from bayes_scaling.model import (
    CORE_LATENT,
    CORE_SITES,
    LR_REF_PARAMS,
    NUISANCE_LATENT,
    NUISANCE_SITES,
    DataRange,
    ModelData,
    PriorConfig,
    block_and_embedding_params,
    extrapolation_distance,
    make_model_data,
    mean_loss,
    sample_discrepancy,
    scaling_model,
)

__all__ = [
    "Diagnostics",
    "NutsConfig",
    "OptimumDraws",
    "Posterior",
    "Refitter",
    "fit_posterior",
]

logger = logging.getLogger(__name__)

#: Shapes searched by :meth:`Posterior.optimum` for API-trained posteriors: the grid the
#: simulator's true optimum uses (DESIGN.md section 3), head dimension 64, batch 128 or 256.
OPTIMUM_D_MODELS = np.arange(64, 4096 + 1, 64, dtype=np.float64)
OPTIMUM_NUM_LAYERS = np.arange(1, 96 + 1, dtype=np.float64)
OPTIMUM_BATCH_SIZES = (128.0, 256.0)


class InferenceConfigError(BayesScalingError, ValueError):
    """A sampler setting outside its valid range."""


@dataclass(frozen=True, kw_only=True)
class NutsConfig:
    """Settings of the NUTS sampler.

    The defaults are sized for the active-learning loop (a refit with ~50 runs in a few seconds
    on one core); for a final report use :meth:`for_report` (more warmup and draws).

    Attributes
    ----------
    num_warmup, num_samples, num_chains : int
    target_accept : float
        Dual-averaging target acceptance; 0.9 keeps divergences rare in the curved posterior.
    max_tree_depth : int
    dense_mass : bool
        Dense mass matrix: the law's amplitudes and exponents stay correlated after centring.
    chain_method : str
        ``"sequential"`` (default: on CPU it was 20-40% faster than ``"vectorized"``, whose chains
        move in lockstep at the deepest tree of the two) or ``"vectorized"``.
    min_capacity : int
        Smallest padded data size of the :class:`Refitter`.
    """

    num_warmup: int = 400
    num_samples: int = 300
    num_chains: int = 2
    target_accept: float = 0.9
    max_tree_depth: int = 8
    dense_mass: bool = True
    chain_method: str = "sequential"
    min_capacity: int = 64

    def __post_init__(self):
        for name in ("num_warmup", "num_samples", "num_chains", "max_tree_depth", "min_capacity"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InferenceConfigError(f"{name}: expected a positive integer, got {value!r}")
        if not 0.5 <= self.target_accept < 1.0:
            raise InferenceConfigError(
                f"target_accept: expected a number in [0.5, 1), got {self.target_accept!r}"
            )
        if self.chain_method not in ("vectorized", "sequential"):
            raise InferenceConfigError(
                f"chain_method: expected 'vectorized' or 'sequential', got {self.chain_method!r}"
            )

    @classmethod
    def for_report(cls) -> NutsConfig:
        """Return settings for final numbers: 4 chains, 500 warmup, 1000 draws each.

        On the simulated designs of ``experiments/simulated_coverage.py`` (46 API runs) these
        gave r-hat 1.0035-1.0053 and bulk ESS >= 600 on every latent site (4 seeds), where
        4 x 400/400 gave 1.008-1.018 and 2 x 500/500 1.007-1.025 (``lam``, ``omega``, ``l0``,
        ``k_c`` mix slowest). Sampling takes ~8 s on one core; a fresh Refitter adds one
        compilation of the sampler (~20-45 s depending on load).
        """
        return cls(num_warmup=500, num_samples=1000, num_chains=4)


@dataclass(frozen=True, kw_only=True)
class Diagnostics:
    """Sampler diagnostics over the latent sites, and what to do when they are bad."""

    r_hat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-ready mapping."""
        return {
            "r_hat_max": self.r_hat_max,
            "ess_bulk_min": self.ess_bulk_min,
            "ess_tail_min": self.ess_tail_min,
            "divergences": self.divergences,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class OptimumDraws:
    """Per-draw compute-optimal allocation at one compute, each of shape ``(S,)``.

    ``n_params`` are non-embedding parameters, ``n_tokens = flops / (6 n_params)``. ``loss`` is
    the predicted mean loss there: the law's value times the extrapolation discrepancy
    ``exp(tau_x sqrt(u) z_x)`` of each draw (``u`` the distance beyond the fitted data, so equal to
    ``law_loss`` inside the data); present this one as the prediction. ``law_loss`` is the plain
    law's minimum (what the argmin minimised). ``d_model``, ``num_layers``, ``batch_size`` and
    ``learning_rate`` are the argmin shape and settings for API-trained posteriors (None for
    generic ones).
    """

    n_params: np.ndarray
    n_tokens: np.ndarray
    loss: np.ndarray
    d_model: np.ndarray | None = None
    num_layers: np.ndarray | None = None
    batch_size: np.ndarray | None = None
    learning_rate: np.ndarray | None = None
    law_loss: np.ndarray | None = None


def _site_names(nuisance: bool) -> tuple[str, ...]:
    return CORE_SITES + (NUISANCE_SITES if nuisance else ())


def _latent_names(nuisance: bool) -> tuple[str, ...]:
    return CORE_LATENT + (NUISANCE_LATENT if nuisance else ())


@partial(jax.jit, static_argnames=("nuisance", "prior"))
def _mean_draws(params, data, *, nuisance, prior):
    return jax.vmap(lambda p: mean_loss(p, data, nuisance=nuisance, prior=prior))(params)


@partial(jax.jit, static_argnames=("prior",))
def _optimum_grid(params, log_flops, *, prior):
    """Per-draw argmin over the shape grid; returns loss, d, L, bs, lr* (each (S,))."""
    d, n_layers, bs = jnp.meshgrid(
        jnp.asarray(OPTIMUM_D_MODELS),
        jnp.asarray(OPTIMUM_NUM_LAYERS),
        jnp.asarray(OPTIMUM_BATCH_SIZES),
        indexing="ij",
    )
    d, n_layers, bs = d.ravel(), n_layers.ravel(), bs.ravel()
    body, _ = block_and_embedding_params(d, n_layers)
    data = ModelData(
        is_config=jnp.ones_like(d),
        log_n=jnp.zeros_like(d),
        log_tokens=jnp.zeros_like(d),
        log_n_center=jnp.zeros(()),
        log_d_center=jnp.zeros(()),
        d_model=d,
        num_layers=n_layers,
        batch_size=bs,
        log_lr=jnp.zeros_like(d),
        log_flops=jnp.full_like(d, log_flops),
        mask=jnp.ones_like(d),
    )

    def one(p):
        log_lr_star = p["l0"] - p["a_lr"] * jnp.log(body / LR_REF_PARAMS)
        losses = mean_loss(p, data._replace(log_lr=log_lr_star), nuisance=True, prior=prior)
        i = jnp.argmin(losses)
        return losses[i], d[i], n_layers[i], bs[i], jnp.exp(log_lr_star[i])

    return jax.lax.map(one, params, batch_size=16)


@dataclass(frozen=True, kw_only=True)
class Posterior:
    """Posterior draws of the scaling-law model and what is derived from them.

    Attributes
    ----------
    draws : dict[str, np.ndarray]
        Every latent site, ``E``, ``A``, ``B`` and the discrepancy's prior draws ``tau_x``,
        ``z_x``, each of shape ``(S,)`` (chains flattened).
    idata : arviz.InferenceData
    diagnostics : Diagnostics
    prior : PriorConfig
    nuisance : bool
        Whether the API nuisance terms were fitted (any API row in the data).
    data_range : DataRange or None
        The fitted runs' edge, from which extrapolation distances are measured (None, or no
        ``tau_x`` draws: no discrepancy).
    param_count : str
        ``"non_embedding"``: every ``n_params`` in and out is a non-embedding count.
    """

    draws: dict[str, np.ndarray]
    idata: az.InferenceData
    diagnostics: Diagnostics
    prior: PriorConfig
    nuisance: bool
    data_range: DataRange | None = None
    param_count: str = "non_embedding"

    @property
    def num_draws(self) -> int:
        """Number of draws ``S``."""
        return int(self.draws["e"].shape[0])

    def _params(self) -> dict:
        return {k: jnp.asarray(self.draws[k]) for k in _site_names(self.nuisance)}

    def _data(self, features: RunFeatures) -> ModelData:
        if not self.nuisance and bool(np.any(features.is_config)):
            logger.debug("API rows predicted by a generic posterior: nuisance terms are off")
        return ModelData(*(jnp.asarray(a) for a in make_model_data(features)))

    def predict_mean(self, features: RunFeatures) -> np.ndarray:
        """Model mean loss (no noise) of each run under each draw, shape ``(S, M)``."""
        return np.asarray(
            _mean_draws(self._params(), self._data(features), nuisance=self.nuisance,
                        prior=self.prior)
        )

    def noise_sd(self, features: RunFeatures) -> np.ndarray:
        """Return the standard deviation of an observed loss around the mean, shape ``(S, M)``.

        The likelihood is Student-t on ``ln loss``; in loss units this is
        ``mean * sigma * sqrt(nu / (nu - 2))`` to first order (``nu = prior.student_df``). This is
        the noise of one new observation given the law, without the extrapolation discrepancy
        (that is an error of the law, shared by nearby runs, not noise a new run averages out);
        see :meth:`predictive_sd` for the total.
        """
        mean = self.predict_mean(features)
        nu = self.prior.student_df
        return mean * self.draws["sigma"][:, None] * np.sqrt(nu / (nu - 2.0))

    def extrapolation_distance(self, features: RunFeatures) -> np.ndarray:
        """Distance ``u`` (nats) of each run beyond the fitted data, shape ``(M,)``; 0 inside."""
        if self.data_range is None:
            return np.zeros(len(features))
        return extrapolation_distance(
            self.data_range, features.n_params, features.n_tokens, features.flops
        )

    def _discrepancy(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-draw ``tau_x`` and ``z_x`` (zeros where the posterior has no discrepancy)."""
        tau, z = self.draws.get("tau_x"), self.draws.get("z_x")
        if tau is None or z is None or self.data_range is None:
            zeros = np.zeros(self.num_draws)
            return zeros, zeros
        return np.asarray(tau), np.asarray(z)

    def discrepancy_sd(self, features: RunFeatures) -> np.ndarray:
        """Return the extrapolation discrepancy's sd in loss units, shape ``(S, M)``.

        ``mean * tau_x * sqrt(u)`` per draw (first order in the log-discrepancy), zero inside the
        data's range.
        """
        tau, _ = self._discrepancy()
        u = self.extrapolation_distance(features)
        return self.predict_mean(features) * tau[:, None] * np.sqrt(u)[None, :]

    def predictive_sd(self, features: RunFeatures) -> np.ndarray:
        """Total predictive sd of an observed loss given each draw's law, shape ``(S, M)``.

        ``sqrt(noise_sd^2 + discrepancy_sd^2)``; the spread of :meth:`sample_predictive` across
        draws adds the parameter uncertainty on top.
        """
        return np.hypot(self.noise_sd(features), self.discrepancy_sd(features))

    def sample_predictive(self, rng_key, features: RunFeatures) -> np.ndarray:
        """Posterior predictive draws of observed losses, shape ``(S, M)``.

        Each draw's law mean times its extrapolation discrepancy ``exp(tau_x sqrt(u) z_x)`` (one
        ``z_x`` per draw, shared by the runs of that draw: the law's error is systematic) times
        Student-t noise on ``ln loss`` drawn with ``rng_key``.
        """
        mean = self.predict_mean(features)
        tau, z = self._discrepancy()
        u = self.extrapolation_distance(features)
        t = np.asarray(jax.random.t(rng_key, self.prior.student_df, shape=mean.shape))
        log_factor = (tau * z)[:, None] * np.sqrt(u)[None, :] + self.draws["sigma"][:, None] * t
        return mean * np.exp(log_factor)

    def law_params(self) -> LawParams:
        """``E, A, B, alpha, beta`` draws (each ``(S,)``), in the model's internal N and D."""
        d = self.draws
        return LawParams(E=d["E"], A=d["A"], B=d["B"], alpha=d["alpha"], beta=d["beta"])

    def optimal_learning_rate(self, features: RunFeatures) -> np.ndarray:
        """Per-draw optimal learning rate of each run, ``(S, M)``; NaN without the lr term."""
        s, m = self.num_draws, len(features)
        if not self.nuisance:
            return np.full((s, m), np.nan)
        body, _ = block_and_embedding_params(features.d_model, features.num_layers)
        log_star = self.draws["l0"][:, None] - self.draws["a_lr"][:, None] * np.log(
            body / LR_REF_PARAMS
        )[None, :]
        return np.where(features.is_config[None, :], np.exp(log_star), np.nan)

    def optimum(self, flops: float) -> OptimumDraws:
        """Per-draw compute-optimal allocation at ``flops``.

        Generic posteriors: the Chinchilla closed form ``N_opt = G (C/6)^(beta/(alpha+beta))``.
        API posteriors: the argmin of the model's mean loss over the shape grid the simulator's
        optimum uses (``d_model`` multiples of 64 up to 4096, 1-96 layers, batch 128 or 256) at
        each draw's optimal learning rate; ``n_params`` is the non-embedding count of that shape.
        """
        flops = float(flops)
        if not self.nuisance:
            n, tokens = optimal_allocation(self.law_params(), flops)
            n, tokens = np.asarray(n), np.asarray(tokens)
            law_loss = np.asarray(
                self.draws["E"] + self.draws["A"] * n ** -self.draws["alpha"]
                + self.draws["B"] * tokens ** -self.draws["beta"]
            )
            return OptimumDraws(
                n_params=n,
                n_tokens=tokens,
                loss=law_loss * self._optimum_factor(n, tokens, flops),
                law_loss=law_loss,
            )
        law_loss, d, n_layers, bs, lr = (
            np.asarray(a) for a in _optimum_grid(self._params(), math.log(flops), prior=self.prior)
        )
        n = n_layers * (12.0 * d**2 + 7.0 * d) + d + 32000.0 * d
        tokens = flops / (6.0 * n)
        return OptimumDraws(
            n_params=n,
            n_tokens=tokens,
            loss=law_loss * self._optimum_factor(n, tokens, flops),
            d_model=d,
            num_layers=n_layers,
            batch_size=bs,
            learning_rate=lr,
            law_loss=law_loss,
        )

    def _optimum_factor(self, n, tokens, flops) -> np.ndarray:
        """``exp(tau_x sqrt(u) z_x)`` at each draw's own optimum ``(n, tokens)``, shape ``(S,)``."""
        tau, z = self._discrepancy()
        if self.data_range is None:
            return np.ones(self.num_draws)
        u = extrapolation_distance(self.data_range, n, tokens, np.full(np.shape(n), flops))
        return np.exp(tau * z * np.sqrt(u))


def _capacity(m: int, minimum: int) -> int:
    return max(minimum, 1 << max(0, (m - 1).bit_length()))


def _diagnose(idata: az.InferenceData, sites, divergences: int, nuts: NutsConfig) -> Diagnostics:
    warnings = []
    if nuts.num_chains > 1:
        r_hat = float(np.nanmax(az.rhat(idata, var_names=list(sites)).to_array().values))
    else:
        r_hat = float("nan")
        warnings.append("r_hat needs at least 2 chains: set num_chains >= 2")
    ess_bulk = float(np.nanmin(az.ess(idata, var_names=list(sites), method="bulk")
                               .to_array().values))
    ess_tail = float(np.nanmin(az.ess(idata, var_names=list(sites), method="tail")
                               .to_array().values))
    if r_hat > 1.01:
        warnings.append(
            f"r_hat {r_hat:.3f} > 1.01: chains disagree; increase num_warmup (now "
            f"{nuts.num_warmup}) and num_samples, or check the data for a bimodal posterior"
        )
    if ess_bulk < 100 or ess_tail < 100:
        warnings.append(
            f"ess bulk {ess_bulk:.0f} / tail {ess_tail:.0f} < 100: increase num_samples (now "
            f"{nuts.num_samples}) or num_chains (now {nuts.num_chains})"
        )
    if divergences:
        warnings.append(
            f"{divergences} divergent transitions: raise target_accept (now "
            f"{nuts.target_accept}) towards 0.95-0.99; intervals may be biased"
        )
    return Diagnostics(
        r_hat_max=r_hat,
        ess_bulk_min=ess_bulk,
        ess_tail_min=ess_tail,
        divergences=int(divergences),
        warnings=warnings,
    )


class Refitter:
    """Refits the model as data grow, reusing compiled samplers.

    numpyro's ``MCMC.run`` re-jits its sampling loop on every call (its loop body is wrapped anew
    each time), which costs 10-20 s per refit here. So the Refitter drives numpyro's NUTS kernel
    (:func:`numpyro.infer.hmc.hmc`) itself: one jitted program per ``(capacity, nuisance)`` runs
    warmup and sampling for a chain with the data as arguments, padded to ``capacity`` (next power
    of two, at least ``nuts.min_capacity``) with masked rows. A refit with one more observation
    then reuses the compiled program, and each chain starts from where the previous fit's chain
    ended (a warm start; the first fit starts from the prior median).
    """

    def __init__(self, *, prior: PriorConfig | None = None, nuts: NutsConfig | None = None):
        self.prior = PriorConfig() if prior is None else prior
        self.nuts = NutsConfig() if nuts is None else nuts
        self._programs: dict[tuple[int, bool], tuple] = {}
        self._last_z: dict[bool, dict] = {}
        self.last_fit_seconds = float("nan")

    def reset(self) -> None:
        """Forget the warm starts; keep the compiled programs.

        The next fit starts from the prior median, as a fresh Refitter's would: use it to fit
        unrelated data sets with one Refitter without recompiling.
        """
        self._last_z.clear()

    def _program(self, rng_key, capacity: int, nuisance: bool, data, loss):
        key = (capacity, nuisance)
        if key in self._programs:
            return self._programs[key]
        nuts = self.nuts
        model = partial(scaling_model, prior=self.prior, nuisance=nuisance)
        info, potential_gen, postprocess_gen, _ = initialize_model(
            rng_key,
            model,
            init_strategy=init_to_median(num_samples=15),
            dynamic_args=True,
            model_args=(data,),
            model_kwargs={"loss": loss},
        )
        init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")

        def one_chain(chain_key, z0, data, loss):
            kwargs = {"loss": loss}
            state = init_kernel(
                z0,
                nuts.num_warmup,
                dense_mass=nuts.dense_mass,
                target_accept_prob=nuts.target_accept,
                max_tree_depth=nuts.max_tree_depth,
                model_args=(data,),
                model_kwargs=kwargs,
                rng_key=chain_key,
            )

            def warm(s, _):
                return sample_kernel(s, (data,), kwargs), None

            def draw(s, _):
                s = sample_kernel(s, (data,), kwargs)
                return s, (s.z, s.diverging)

            state, _ = jax.lax.scan(warm, state, None, length=nuts.num_warmup)
            _, (zs, diverging) = jax.lax.scan(draw, state, None, length=nuts.num_samples)
            return zs, diverging

        if nuts.chain_method == "vectorized":
            run = jax.jit(jax.vmap(one_chain, in_axes=(0, 0, None, None)))
        else:
            single = jax.jit(one_chain)

            def run(keys, z0s, data, loss):
                outs = [
                    single(keys[c], jax.tree.map(lambda x, c=c: x[c], z0s), data, loss)
                    for c in range(keys.shape[0])
                ]
                return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)

        constrain = jax.jit(
            lambda zs, data, loss: jax.vmap(postprocess_gen(data, loss=loss))(zs)
        )
        self._programs[key] = (info.z, run, constrain)
        return self._programs[key]

    def fit(self, rng_key, features: RunFeatures, loss) -> Posterior:
        """Fit the posterior to ``features`` and observed ``loss`` (shape ``(M,)``)."""
        loss = np.asarray(loss, dtype=np.float64).reshape(-1)
        if len(features) < 1:
            raise BayesScalingError("features: expected at least one run, got 0")
        if loss.shape[0] != len(features):
            raise BayesScalingError(
                f"loss: expected {len(features)} values (one per run), got {loss.shape[0]}"
            )
        if not np.all(np.isfinite(loss) & (loss > 0)):
            raise BayesScalingError("loss: expected finite positive values")
        nuisance = bool(np.any(features.is_config))
        capacity = _capacity(len(features), self.nuts.min_capacity)
        data = ModelData(*(jnp.asarray(a) for a in make_model_data(features, capacity)))
        padded = np.ones(capacity)
        padded[: len(loss)] = loss
        padded = jnp.asarray(padded)
        init_key, chain_key, jitter_key = jax.random.split(rng_key, 3)
        start = time.perf_counter()
        z_init, run, constrain = self._program(init_key, capacity, nuisance, data, padded)
        chains = self.nuts.num_chains
        z0 = self._last_z.get(nuisance)
        if z0 is None:
            # prior median plus a small jitter per chain, so r-hat can see disagreement
            leaves, tree = jax.tree.flatten(z_init)
            keys = jax.random.split(jitter_key, len(leaves))
            z0 = jax.tree.unflatten(tree, [
                x[None] + 0.1 * jax.random.normal(k, (chains,) + jnp.shape(x))
                for x, k in zip(leaves, keys, strict=True)
            ])
        zs, diverging = run(jax.random.split(chain_key, chains), z0, data, padded)
        self._last_z[nuisance] = jax.tree.map(lambda x: x[:, -1], zs)
        flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), zs)
        constrained = constrain(flat, data, padded)
        self.last_fit_seconds = time.perf_counter() - start
        samples = {
            k: np.asarray(v).reshape((chains, -1)) for k, v in constrained.items() if k != "loss"
        }
        divergences = int(np.sum(np.asarray(diverging)))
        sites = _site_names(nuisance)
        latent = _latent_names(nuisance)
        grouped = {k: samples[k] for k in dict.fromkeys(latent + sites + ("E", "A", "B"))}
        # The discrepancy's prior draws (the data cannot inform them): one (tau, z) per draw.
        grouped.update({
            k: v.reshape(chains, -1) for k, v in sample_discrepancy(
                jax.random.fold_in(rng_key, 7), self.prior, chains * self.nuts.num_samples
            ).items()
        })
        idata = az.from_dict(posterior=grouped)
        diagnostics = _diagnose(idata, latent, divergences, self.nuts)
        for message in diagnostics.warnings:
            logger.warning(message)
        draws = {k: v.reshape(-1) for k, v in grouped.items()}
        return Posterior(
            draws=draws,
            idata=idata,
            diagnostics=diagnostics,
            prior=self.prior,
            nuisance=nuisance,
            data_range=DataRange.from_features(features),
        )


def fit_posterior(
    rng_key,
    features: RunFeatures,
    loss,
    *,
    prior: PriorConfig | None = None,
    nuts: NutsConfig | None = None,
) -> Posterior:
    """Fit the scaling-law posterior once (see :class:`Refitter` for repeated fits)."""
    return Refitter(prior=prior, nuts=nuts).fit(rng_key, features, loss)

"""The fitted posterior behind one declared interface: :class:`PosteriorQueries`.

Everything the rest of the package asks of a fit (``recommend``, ``plots``, ``report``,
``loop`` and ``acquisition``'s inputs) is a method of :class:`PosteriorQueries`; nothing wraps,
patches or probes a posterior from outside. :class:`Posterior` implements it from an
``arviz.InferenceData``, the one store of the numbers (``draws`` is a flattened view of it).
Inside it, predictions pad their rows to a multiple of 64 (a jitted function compiles once per
number of rows) and :meth:`Posterior.optimum` is memoised per compute (an API posterior's
optimum searches 12,288 shapes per draw).

Conventions: ``N`` is the non-embedding parameter count of DESIGN.md section 4
(``param_count = "non_embedding"``), ``D = flops / (6 N)``. The law's ``A``, ``B`` and
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Protocol, runtime_checkable

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np

from bayes_scaling.count_family import FAMILY_2025, CountFamily
from bayes_scaling.diagnostics import Diagnostics
from bayes_scaling.features import RunFeatures
from bayes_scaling.law import (
    LawParams,
    ModelData,
    log_optimal_learning_rate,
    log_tokens,
    mean_loss,
    optimal_allocation,
    predict_loss,
    row_counts,
)
from bayes_scaling.model import (
    CORE_SITES,
    NUISANCE_SITES,
    WARMUP_SITES,
    DataRange,
    PriorConfig,
    discrepancy_shape,
    extrapolation_distance,
    likelihood_scale,
    make_model_data,
)
from bayes_scaling.params import (
    ASPECT_RATIO_BAND,
    OPTIMUM_BATCH_SIZES,
    OPTIMUM_D_MODELS,
    OPTIMUM_NUM_LAYERS,
    PARAM_COUNT,
)
from bayes_scaling.rng import numpy_generator

__all__ = ["DISCREPANCY_GROUP", "OptimumDraws", "Posterior", "PosteriorQueries"]

logger = logging.getLogger(__name__)

#: The InferenceData group holding the discrepancy's prior-only draws ``tau_x`` and ``z_x``.
DISCREPANCY_GROUP = "prior"
#: Predictions pad their rows to a multiple of this (one compilation per multiple).
ROW_BLOCK = 64
#: Draws :meth:`Posterior.optimal_size_median` searches at most (an even subset of them).
FOCUS_DRAWS = 512


@dataclass(frozen=True)
class OptimumDraws:
    """Per-draw compute-optimal allocation at one compute, each of shape ``(S,)``.

    ``n_params`` are non-embedding parameters, ``n_tokens = flops / (6 n_params)``. ``loss`` is
    the predicted mean loss there: the law's value times the extrapolation discrepancy
    ``exp(tau_x u z_x)`` of each draw (``u`` the distance beyond the fitted data, so equal to
    ``law_loss`` inside the data; :func:`~bayes_scaling.model.discrepancy_shape`); present this
    one as the prediction. ``law_loss`` is the plain law's minimum (what the argmin minimised).
    ``d_model``, ``num_layers``, ``batch_size`` and ``learning_rate`` are the argmin shape and
    settings for API-trained posteriors (None for generic ones).
    """

    n_params: np.ndarray
    n_tokens: np.ndarray
    loss: np.ndarray
    d_model: np.ndarray | None = None
    num_layers: np.ndarray | None = None
    batch_size: np.ndarray | None = None
    learning_rate: np.ndarray | None = None
    law_loss: np.ndarray | None = None


@runtime_checkable
class PosteriorQueries(Protocol):
    """What the package asks of a fitted posterior. Arrays are float64; ``S`` draws, ``M`` rows.

    Attributes
    ----------
    nuisance : bool
        Whether the API nuisance terms were fitted (any API row in the data).
    param_count : str
        ``"non_embedding"``: every ``n_params`` in and out is a non-embedding count.
    diagnostics : Diagnostics
    num_draws : int
    draws : mapping of str to numpy.ndarray
        Every site, each of shape ``(S,)`` (read-only view of ``idata``).
    idata : arviz.InferenceData
    """

    nuisance: bool
    param_count: str
    diagnostics: Diagnostics
    num_draws: int
    draws: Mapping[str, np.ndarray]
    idata: az.InferenceData

    def predict_mean(self, features: RunFeatures) -> np.ndarray:
        """Mean loss of each row under each draw, ``(S, M)``."""
        ...

    def noise_sd(self, features: RunFeatures) -> np.ndarray:
        """Sd of one new observation around the mean, ``(S, M)``."""
        ...

    def predictive_sd(self, features: RunFeatures) -> np.ndarray:
        """Noise and extrapolation discrepancy together, ``(S, M)``."""
        ...

    def sample_predictive(self, rng_key, features: RunFeatures) -> np.ndarray:
        """Posterior predictive draws of observed losses, ``(S, M)``."""
        ...

    def expected_loss(self, features: RunFeatures) -> np.ndarray:
        """Posterior expected mean loss of each row (discrepancy included), ``(M,)``."""
        ...

    def optimal_learning_rate(self, features: RunFeatures) -> np.ndarray:
        """Per-draw optimal learning rate of each row, ``(S, M)``; NaN without an lr term."""
        ...

    def optimum(self, flops: float) -> OptimumDraws:
        """Per-draw compute-optimal allocation at ``flops`` (memoised)."""
        ...

    def optimal_size_median(self, flops: float) -> float:
        """``exp`` of the median of ``ln N_opt(flops)`` over the draws (or a subset of them)."""
        ...

    def law_params(self) -> LawParams:
        """``E, A, B, alpha, beta`` draws, each ``(S,)``."""
        ...

    def preferred_aspect_ratio(self) -> float:
        """The aspect ratio ``d_model / num_layers`` the posterior prefers, in the searched band."""
        ...


def _site_names(nuisance: bool) -> tuple[str, ...]:
    return CORE_SITES + (NUISANCE_SITES if nuisance else ())


@partial(jax.jit, static_argnames=("nuisance", "prior"))
def _mean_draws(params, data, *, nuisance, prior):
    return jax.vmap(lambda p: mean_loss(p, data, nuisance=nuisance, prior=prior))(params)


def _optimum_shapes(family: CountFamily):
    """The optimum's grid ``(d, L, bs, block, emb, emb_flops, n)``, float64 arrays (K,)."""
    d, n_layers, bs = np.meshgrid(
        np.asarray(OPTIMUM_D_MODELS, np.float64),
        np.asarray(OPTIMUM_NUM_LAYERS, np.float64),
        np.asarray(OPTIMUM_BATCH_SIZES, np.float64),
        indexing="ij",
    )
    d, n_layers, bs = d.ravel(), n_layers.ravel(), bs.ravel()
    if family.api == "2025":  # the law's own closed forms, in the graph (as they always were)
        return (d, n_layers, bs, None, None, None, family.counts(d, n_layers)[3])
    keep = d % family.head_dim == 0  # widths whose heads have the family's head dimension
    d, n_layers, bs = d[keep], n_layers[keep], bs[keep]
    return (d, n_layers, bs, *family.counts(d, n_layers))


@partial(jax.jit, static_argnames=("prior",))
def _optimum_grid(params, log_flops, grid, *, prior):
    """Per-draw argmin over the shape grid; returns loss, d, L, bs, lr* (each (S,))."""
    d, n_layers, bs, body, emb, emb_flops = grid
    data = ModelData(
        is_config=jnp.ones_like(d),
        log_n=None,  # API rows only
        log_tokens=None,
        log_n_center=jnp.zeros(()),
        log_d_center=jnp.zeros(()),
        d_model=d,
        num_layers=n_layers,
        batch_size=bs,
        log_lr=jnp.zeros_like(d),
        log_flops=jnp.full_like(d, log_flops),
        mask=jnp.ones_like(d),
        block=body,
        emb=emb,
        emb_flops=emb_flops,
    )

    def one(p):
        log_lr_star = log_optimal_learning_rate(p, row_counts(data)[0], log_tokens(p, data), bs)
        losses = mean_loss(p, data._replace(log_lr=log_lr_star), nuisance=True, prior=prior)
        i = jnp.argmin(losses)
        return losses[i], d[i], n_layers[i], bs[i], jnp.exp(log_lr_star[i])

    return jax.lax.map(one, params, batch_size=16)


@partial(jax.jit, static_argnames=("nuisance", "prior"))
def _scale_draws(params, data, *, nuisance, prior):
    def one(p):
        mu = mean_loss(p, data, nuisance=nuisance, prior=prior)
        return likelihood_scale(p, data, mu, prior=prior)

    return jax.vmap(one)(params)


def _padded(method: Callable[..., np.ndarray]):
    """Run ``method(self, features, ...)`` on rows padded to a multiple of ``ROW_BLOCK``."""

    def call(self, features: RunFeatures, *args) -> np.ndarray:
        m = len(features)
        size = ROW_BLOCK * max(1, -(-m // ROW_BLOCK))
        index = np.concatenate([np.arange(m), np.full(size - m, max(m - 1, 0))])
        return np.asarray(method(self, features.take(index), *args), np.float64)[:, :m]

    call.__name__, call.__doc__ = method.__name__, method.__doc__
    return call


def student_t_draws(rng_key, df: float, shape: tuple[int, ...]) -> np.ndarray:
    """Standard Student-t draws with ``df`` degrees of freedom, a function of ``rng_key``.

    NumPy's generator, seeded by the key: ``jax.random.t`` draws its gammas by
    rejection in a loop over every element and took 37 s for the 8,000 x 2,496 noise draws of
    one predictive check of the 2024 rows, NumPy 1.4 s (2026-12-03, 2 cores).
    """
    return numpy_generator(rng_key).standard_t(df, size=shape)


@dataclass(frozen=True, kw_only=True)
class Posterior:
    """Posterior draws of the scaling-law model and what is derived from them.

    Implements :class:`PosteriorQueries`.

    Attributes
    ----------
    idata : arviz.InferenceData
        The draws: ``posterior`` holds every latent site and ``E``, ``A``, ``B`` (chains x
        draws); the group :data:`DISCREPANCY_GROUP` the discrepancy's prior draws ``tau_x``,
        ``z_x`` (the data cannot inform them).
    diagnostics : Diagnostics
    prior : PriorConfig
    nuisance : bool
        Whether the API nuisance terms were fitted (any API row in the data).
    data_range : DataRange or None
        The fitted runs' edge, from which extrapolation distances are measured (None, or no
        ``tau_x`` draws: no discrepancy).
    param_count : str
        ``"non_embedding"``: every ``n_params`` in and out is a non-embedding count.
    family : CountFamily
        Whose non-embedding count that is (the fitted features' family): the shapes of
        :meth:`optimum` are counted in it.
    """

    idata: az.InferenceData
    diagnostics: Diagnostics
    prior: PriorConfig
    nuisance: bool
    data_range: DataRange | None = None
    param_count: str = PARAM_COUNT
    family: CountFamily = FAMILY_2025
    _optima: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @cached_property
    def draws(self) -> Mapping[str, np.ndarray]:
        """Every site of ``idata`` flattened over chains to shape ``(S,)`` (a read-only view)."""
        out = {}
        groups = [self.idata.posterior]
        if DISCREPANCY_GROUP in self.idata.groups():
            groups.append(self.idata[DISCREPANCY_GROUP])
        for group in groups:
            for name, values in group.data_vars.items():
                array = np.asarray(values.values, np.float64).reshape(-1)
                array.setflags(write=False)
                out[str(name)] = array
        return out

    def with_draws(self, **updates: np.ndarray) -> Posterior:
        """Return a copy with sites replaced or added, each an ``(S,)`` array.

        A site of the ``posterior`` group is replaced there; any other (e.g. ``tau_x`` zeroed,
        or discrepancy draws a loader found elsewhere) goes to :data:`DISCREPANCY_GROUP`. The
        other groups (sample stats, log likelihood, observed data) are kept.
        """
        chains = int(self.idata.posterior.sizes["chain"])
        groups = {name: self.idata[name] for name in self.idata.groups()}
        for name, values in updates.items():
            group = "posterior" if name in self.idata.posterior.data_vars else DISCREPANCY_GROUP
            array = np.asarray(values, np.float64).reshape(chains, -1)
            new = az.from_dict(**{group: {name: array}})[group]
            groups[group] = new if group not in groups else groups[group].assign(
                {name: new[name]})
        return Posterior(idata=az.InferenceData(**groups), diagnostics=self.diagnostics,
                         prior=self.prior, nuisance=self.nuisance, data_range=self.data_range,
                         param_count=self.param_count, family=self.family)

    @property
    def num_draws(self) -> int:
        """Number of draws ``S``."""
        return int(self.draws["e"].shape[0])

    def _params(self) -> dict:
        names = _site_names(self.nuisance) + tuple(s for s in WARMUP_SITES if s in self.draws)
        return {k: jnp.asarray(self.draws[k]) for k in names}

    def _data(self, features: RunFeatures) -> ModelData:
        if not self.nuisance and bool(np.any(features.is_config)):
            logger.debug("API rows predicted by a generic posterior: nuisance terms are off")
        return make_model_data(features, generic_law=not self.nuisance).as_jax()

    @_padded
    def predict_mean(self, features: RunFeatures) -> np.ndarray:
        """Model mean loss (no noise) of each run under each draw, shape ``(S, M)``."""
        return _mean_draws(self._params(), self._data(features), nuisance=self.nuisance,
                           prior=self.prior)

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
        return mean * self.log_noise_scale(features) * np.sqrt(nu / (nu - 2.0))

    @_padded
    def log_noise_scale(self, features: RunFeatures) -> np.ndarray:
        """Scale of the Student-t on ``ln loss`` of each run, ``(S, M)``.

        ``sigma (1 + s_far g)``, widening with the row's distance ``g`` from the
        frontier (:func:`bayes_scaling.model.likelihood_scale`).
        """
        return _scale_draws(self._params(), self._data(features), nuisance=self.nuisance,
                            prior=self.prior)

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
        return tau, z

    def discrepancy_sd(self, features: RunFeatures) -> np.ndarray:
        """Return the extrapolation discrepancy's sd in loss units, shape ``(S, M)``.

        ``mean * tau_x * h(u)`` per draw (``h`` = :func:`~bayes_scaling.model.discrepancy_shape`;
        first order in the log-discrepancy), zero inside the data's range.
        """
        tau, _ = self._discrepancy()
        shape = discrepancy_shape(self.extrapolation_distance(features))
        return self.predict_mean(features) * tau[:, None] * shape[None, :]

    def predictive_sd(self, features: RunFeatures) -> np.ndarray:
        """Total predictive sd of an observed loss given each draw's law, shape ``(S, M)``.

        ``sqrt(noise_sd^2 + discrepancy_sd^2)``; the spread of :meth:`sample_predictive` across
        draws adds the parameter uncertainty on top.
        """
        return np.hypot(self.noise_sd(features), self.discrepancy_sd(features))

    def expected_loss(self, features: RunFeatures) -> np.ndarray:
        """Posterior expected mean loss of each run, shape ``(M,)``: what a decision minimises.

        The average over draws of the law's mean times the discrepancy's expected factor
        ``E exp(tau_x h z) = exp(tau_x^2 h^2 / 2)`` (``h`` the discrepancy's shape at the distance
        beyond the data, :func:`~bayes_scaling.model.discrepancy_shape`): parameter uncertainty
        and the extrapolation's own uncertainty both cost what they cost.
        """
        tau, _ = self._discrepancy()
        shape = discrepancy_shape(self.extrapolation_distance(features))
        factor = np.exp(0.5 * tau[:, None] ** 2 * shape[None, :] ** 2)
        return np.mean(self.predict_mean(features) * factor, axis=0)

    def sample_predictive(self, rng_key, features: RunFeatures) -> np.ndarray:
        """Posterior predictive draws of observed losses, shape ``(S, M)``.

        Each draw's law mean times its extrapolation discrepancy ``exp(tau_x h(u) z_x)`` (one
        ``z_x`` per draw, shared by the runs of that draw: the law's error is systematic) times
        Student-t noise on ``ln loss`` drawn with ``rng_key`` (one draw per padded row, so the
        noise of a row does not depend on how many rows are asked for within a block of 64).
        """
        return self._sample_predictive(features, rng_key)

    @_padded
    def _sample_predictive(self, features: RunFeatures, rng_key) -> np.ndarray:
        mean = self.predict_mean(features)
        tau, z = self._discrepancy()
        shape = discrepancy_shape(self.extrapolation_distance(features))
        t = student_t_draws(rng_key, self.prior.student_df, mean.shape)
        log_factor = (tau * z)[:, None] * shape[None, :] + self.log_noise_scale(features) * t
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
        data = make_model_data(features)
        params = {k: self.draws[k][:, None] for k in ("l0", "a_lr", "b_lr", "c_bs", "omega")}
        body = row_counts(data)[0][None, :]
        log_star = log_optimal_learning_rate(params, body, log_tokens(params, data),
                                             data.batch_size[None, :])
        return np.where(features.is_config[None, :], np.exp(np.asarray(log_star)), np.nan)

    def preferred_aspect_ratio(self) -> float:
        """Aspect ratio ``d_model / num_layers`` the posterior prefers, clipped to the band.

        The posterior median of ``exp(log_ar0)`` (the centre of the model's shape term) where the
        model has one, otherwise the geometric centre of ``params.ASPECT_RATIO_BAND`` (about 90).
        """
        low, high = ASPECT_RATIO_BAND
        if "log_ar0" in self.draws:
            return float(np.clip(np.exp(np.median(self.draws["log_ar0"])), low, high))
        return float(np.sqrt(low * high))

    def optimum(self, flops: float) -> OptimumDraws:
        """Per-draw compute-optimal allocation at ``flops`` (computed once per compute).

        Generic posteriors: the Chinchilla closed form ``N_opt = G (C/6)^(beta/(alpha+beta))``.
        API posteriors: the argmin of the model's mean loss over the shape grid the simulator's
        optimum uses (``params.OPTIMUM_*``: ``d_model`` multiples of 64 up to 4096, 1-96 layers,
        batch 128 or 256) at each draw's optimal learning rate; ``n_params`` is the non-embedding
        count of that shape in :attr:`family` (a 2026 family keeps the widths its head
        dimension divides).
        """
        flops = float(flops)
        if flops not in self._optima:
            self._optima[flops] = self._optimum(flops)
        return self._optima[flops]

    def _optimum(self, flops: float) -> OptimumDraws:
        if not self.nuisance:
            law = self.law_params()
            n, tokens = (np.asarray(a) for a in optimal_allocation(law, flops))
            law_loss = np.asarray(predict_loss(law, n, tokens))
            return OptimumDraws(n_params=n, n_tokens=tokens,
                                loss=law_loss * self._optimum_factor(n, tokens, flops),
                                law_loss=law_loss)
        law_loss, d, n_layers, bs, lr, n = self._grid_optimum(self._params(), flops)
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

    def optimal_size_median(self, flops: float, *, max_draws: int = FOCUS_DRAWS) -> float:
        """``exp`` of the median of ``ln N_opt(flops)`` over the draws.

        Where the optimum at ``flops`` is not computed yet and there are more than
        ``max_draws`` draws, the median is over an evenly strided subset of at most
        ``max_draws`` of them: the candidate generator only centres its focus there (within
        ``CandidateConfig.focus_width``, 0.7 nats), and the API optimum's shape search costs
        about a second per compute for 4,000 draws.
        """
        flops = float(flops)
        if flops in self._optima or not self.nuisance or self.num_draws <= max_draws:
            n = self.optimum(flops).n_params
        else:
            step = -(-self.num_draws // max_draws)
            n = self._grid_optimum({k: v[::step] for k, v in self._params().items()}, flops)[5]
        return float(np.exp(np.median(np.log(np.asarray(n, np.float64)))))

    def _grid_optimum(self, params: dict, flops: float) -> tuple[np.ndarray, ...]:
        """The argmin over the optimum's shape grid of each draw in ``params`` at ``flops``.

        Returns ``(law_loss, d_model, num_layers, batch_size, lr, n_params)``, each ``(S,)``.
        """
        shapes = _optimum_shapes(self.family)
        law_loss, d, n_layers, bs, lr = (
            np.asarray(a) for a in _optimum_grid(params, math.log(flops),
                                                 tuple(None if a is None else jnp.asarray(a)
                                                       for a in shapes[:6]),
                                                 prior=self.prior)
        )
        n = np.asarray(self.family.counts(d, n_layers)[3], np.float64)
        return law_loss, d, n_layers, bs, lr, n

    def _optimum_factor(self, n, tokens, flops) -> np.ndarray:
        """``exp(tau_x h(u) z_x)`` at each draw's own optimum ``(n, tokens)``, shape ``(S,)``."""
        tau, z = self._discrepancy()
        if self.data_range is None:
            return np.ones(self.num_draws)
        u = extrapolation_distance(self.data_range, n, tokens, np.full(np.shape(n), flops))
        return np.exp(tau * z * discrepancy_shape(u))

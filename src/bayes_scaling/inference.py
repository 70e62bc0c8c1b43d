"""NUTS fits of the scaling-law model.

:func:`fit_posterior` fits once. :class:`Refitter` keeps one compiled sampler per padded capacity
(the next power of two, at least ``NutsConfig.min_capacity``) so the active-learning loop can refit
after every new observation without recompiling: the data enter the compiled sampler as arguments
of a fixed shape, padded rows masked out of the likelihood. A fit returns a
:class:`~bayes_scaling.posterior.Posterior` whose diagnostics it computed but did not log
(:mod:`bayes_scaling.diagnostics`); showing them is the caller's choice.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer import init_to_median
from numpyro.infer.hmc import hmc
from numpyro.infer.util import initialize_model, log_likelihood

from bayes_scaling.diagnostics import diagnose
from bayes_scaling.errors import BayesScalingError
from bayes_scaling.features import RunFeatures
from bayes_scaling.model import (
    CORE_LATENT,
    CORE_SITES,
    NUISANCE_LATENT,
    NUISANCE_SITES,
    WARMUP_SITES,
    DataRange,
    PriorConfig,
    make_model_data,
    sample_discrepancy,
    scaling_model,
)
from bayes_scaling.posterior import DISCREPANCY_GROUP, Posterior
from bayes_scaling.progress import NO_PROGRESS, Progress, ProgressChannel, scan_with_progress

__all__ = [
    "InferenceConfigError",
    "NutsConfig",
    "Refitter",
    "build_inference_data",
    "chain_workers",
    "find_mode",
    "padded_capacity",
    "fit_posterior",
]

logger = logging.getLogger(__name__)

class InferenceConfigError(BayesScalingError, ValueError):
    """A sampler setting outside its valid range."""


_INITS = ("prior_median", "map")
#: BFGS iterations of :func:`find_mode` (it stops earlier at its gradient tolerance).
MODE_MAX_ITER = 500


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
        move in lockstep at the deepest tree of the two) or ``"vectorized"``. Sequential chains
        are independent runs of one compiled program, so they run on as many threads as the
        process has cores (:func:`chain_workers`), with the same draws as one at a time.
    min_capacity : int
        Smallest padded data size of the :class:`Refitter`.
    exact_capacity : bool
        Hold exactly the fitted rows instead of padding to the next power of two (False: the
        default, so that a refit with one more run reuses the compiled sampler). For a one-off
        fit (``bayes-scaling fit``) the padding is only cost: 2,479 rows padded to 4,096 put
        65% more rows into every gradient.
    init : str
        Where a fit without a warm start begins: ``"prior_median"`` (default: the prior median
        plus a small jitter per chain) or ``"map"`` (the posterior mode in the sampler's
        unconstrained coordinates, found by BFGS from the prior median, plus the same jitter;
        chains then spend their warmup adapting the step size and mass matrix near the typical
        set instead of travelling to it; see :func:`find_mode`). On the 99 course API rows of
        2025 it did not raise the ESS (4 x 1000 + 1000: bulk ESS 551 and 543 against 621 and
        838 at seeds 0 and 1), and a mode can be degenerate where the runs are fewer than the
        parameters, so it stays opt-in (``bayes-scaling fit --init map``).
    """

    num_warmup: int = 400
    num_samples: int = 300
    num_chains: int = 2
    target_accept: float = 0.9
    max_tree_depth: int = 8
    dense_mass: bool = True
    chain_method: str = "sequential"
    min_capacity: int = 64
    exact_capacity: bool = False
    init: str = "prior_median"

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
        if not isinstance(self.exact_capacity, bool):
            raise InferenceConfigError(
                f"exact_capacity: expected True or False, got {self.exact_capacity!r}")
        if self.init not in _INITS:
            raise InferenceConfigError(f"init: expected one of {_INITS}, got {self.init!r}")

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


def find_mode(potential_fn, z0: dict, max_iter: int = MODE_MAX_ITER) -> tuple[dict, jax.Array]:
    """The minimum of ``potential_fn`` (a posterior mode, unconstrained) by BFGS from ``z0``.

    Parameters
    ----------
    potential_fn : callable
        Negative log density of the unconstrained latent sites, ``dict -> scalar``.
    z0 : dict of str to array
        The start (the prior median in :class:`Refitter`).
    max_iter : int

    Returns
    -------
    (dict, jax.Array)
        The mode found, as ``z0``'s structure, and whether it is usable (finite, and no worse
        than ``z0``); the caller falls back to ``z0`` where it is not. Pure and jittable.
    """
    flat0, unravel = ravel_pytree(z0)
    result = jax.scipy.optimize.minimize(lambda x: potential_fn(unravel(x)), flat0,
                                         method="BFGS", options={"maxiter": max_iter})
    usable = jnp.all(jnp.isfinite(result.x)) & jnp.isfinite(result.fun) & (
        result.fun <= potential_fn(z0))
    return unravel(jnp.where(usable, result.x, flat0)), usable


def _latent_names(nuisance: bool, warmup: bool = False) -> tuple[str, ...]:
    """Latent sites; ``warmup``: the 2026 rows' :data:`~bayes_scaling.model.WARMUP_SITES` too."""
    return CORE_LATENT + (NUISANCE_LATENT if nuisance else ()) + (
        WARMUP_SITES if nuisance and warmup else ())


def chain_workers() -> int:
    """How many ``"sequential"`` chains run at once: the cores this process may use.

    Each chain is the same compiled program with its own key, so running them on threads gives
    the same draws as one after another; only the wall time changes (on 2 cores the 4 chains
    of ``bayes-scaling fit`` take about half as long).
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def padded_capacity(m: int, minimum: int) -> int:
    """Rows the compiled sampler holds for ``m`` runs: the next power of two, >= ``minimum``."""
    return max(minimum, 1 << max(0, (m - 1).bit_length()))


#: The observed site of :func:`~bayes_scaling.model.scaling_model` (the Student-t sees
#: ``ln loss``): the variable of the ``log_likelihood`` and ``observed_data`` groups.
OBSERVED_SITE = "log_loss"


def build_inference_data(
    samples: dict[str, np.ndarray],
    discrepancy: dict[str, np.ndarray],
    sample_stats: dict[str, np.ndarray],
    log_likelihood: np.ndarray,
    observed_log_loss: np.ndarray,
) -> az.InferenceData:
    """The fit's full InferenceData (what posterior.nc holds), arrays of shape (chains, draws, ...).

    Groups: ``posterior``, every model site and ``E``, ``A``, ``B``; ``prior``
    (:data:`~bayes_scaling.posterior.DISCREPANCY_GROUP`), the discrepancy's prior-only draws
    ``tau_x``, ``z_x`` (the data cannot inform them, so they are not posterior draws);
    ``sample_stats``, NUTS's per-draw statistics under ArviZ's names (``diverging``,
    ``acceptance_rate``, ``n_steps``, ``tree_depth``, ``energy``, ``lp``, ``step_size``);
    ``log_likelihood`` and ``observed_data``, :data:`OBSERVED_SITE` per fitted run (dimension
    ``run``), the pointwise Student-t log density of ``ln loss`` that ``arviz.loo`` and
    ``arviz.waic`` need.
    """
    dims = {OBSERVED_SITE: ["run"]}
    return az.from_dict(
        posterior=samples,
        **{DISCREPANCY_GROUP: discrepancy},
        sample_stats=sample_stats,
        log_likelihood={OBSERVED_SITE: np.asarray(log_likelihood, np.float64)},
        observed_data={OBSERVED_SITE: np.asarray(observed_log_loss, np.float64)},
        dims=dims,
    )


def _sample_stats(stats: dict, chains: int) -> dict[str, np.ndarray]:
    """NUTS state fields of every draw, under ArviZ's names, shape (chains, draws)."""
    shaped = {k: np.asarray(v).reshape(chains, -1) for k, v in stats.items()}
    n_steps = shaped["num_steps"].astype(np.int64)
    return {
        "diverging": shaped["diverging"].astype(bool),
        "acceptance_rate": shaped["accept_prob"].astype(np.float64),
        "n_steps": n_steps,
        "tree_depth": np.floor(np.log2(np.maximum(n_steps, 1))).astype(np.int64) + 1,
        "energy": shaped["energy"].astype(np.float64),
        "lp": -shaped["potential_energy"].astype(np.float64),
        "step_size": shaped["step_size"].astype(np.float64),
    }


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

    def __init__(self, *, prior: PriorConfig | None = None, nuts: NutsConfig | None = None,
                 progress: Progress | None = None, label: str = "fit"):
        self.prior = PriorConfig() if prior is None else prior
        self.nuts = NutsConfig() if nuts is None else nuts
        # A progress bar per fit (warmup and sampling iterations, through host callbacks
        # compiled into the sampler only when someone watches), described by ``label``.
        self.progress = NO_PROGRESS if progress is None else progress
        self.label = label
        self._channel = None if progress is None else ProgressChannel()
        self._programs: dict[tuple[int, bool, bool], tuple] = {}
        self._last_z: dict[tuple[bool, bool], dict] = {}
        self.last_fit_seconds = float("nan")

    def reset(self) -> None:
        """Forget the warm starts; keep the compiled programs.

        The next fit starts from the prior median, as a fresh Refitter's would: use it to fit
        unrelated data sets with one Refitter without recompiling.
        """
        self._last_z.clear()

    def _program(self, rng_key, capacity: int, nuisance: bool, data, loss):
        key = (capacity, nuisance, data.warmup_steps is not None)
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

            # one scan of warmup and sampling, so that XLA compiles the NUTS kernel once, not
            # once per phase (the kernel adapts while its iteration count is below num_warmup)
            def step(s):
                s = sample_kernel(s, (data,), kwargs)
                return s, (s.z, {"diverging": s.diverging, "accept_prob": s.accept_prob,
                                 "num_steps": s.num_steps, "energy": s.energy,
                                 "potential_energy": s.potential_energy,
                                 "step_size": s.adapt_state.step_size})

            _, (zs, stats) = scan_with_progress(
                step, state, nuts.num_warmup + nuts.num_samples, channel=self._channel,
                phase=0, next_phase_at=nuts.num_warmup)
            zs, stats = jax.tree.map(lambda x: x[nuts.num_warmup:], (zs, stats))
            return zs, stats

        if nuts.chain_method == "vectorized":
            run = jax.jit(jax.vmap(one_chain, in_axes=(0, 0, None, None)))
        else:
            single = jax.jit(one_chain)

            def run(keys, z0s, data, loss):
                def chain(c):
                    z0 = jax.tree.map(lambda x: x[c], z0s)
                    return jax.block_until_ready(single(keys[c], z0, data, loss))

                chains = int(keys.shape[0])
                workers = min(chains, chain_workers())
                if workers == 1:
                    outs = [chain(c) for c in range(chains)]
                else:  # XLA releases the GIL: each thread's chain runs on its own core
                    with ThreadPoolExecutor(max_workers=workers) as pool:
                        outs = list(pool.map(chain, range(chains)))
                return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)

        constrain = jax.jit(
            lambda zs, data, loss: jax.vmap(postprocess_gen(data, loss=loss))(zs)
        )
        pointwise = jax.jit(
            lambda sites, data, loss: log_likelihood(model, sites, data, loss=loss)[OBSERVED_SITE]
        )
        mode = None
        if nuts.init == "map":
            mode = jax.jit(lambda z0, data, loss: find_mode(potential_gen(data, loss=loss), z0))
        self._programs[key] = (info.z, run, constrain, pointwise, mode)
        return self._programs[key]

    def fit(self, rng_key, features: RunFeatures, loss, *, label: str | None = None) -> Posterior:
        """Fit the posterior to ``features`` and observed ``loss`` (shape ``(M,)``).

        ``label`` names this fit's progress bar and log line (default: the Refitter's).
        """
        label = self.label if label is None else label
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
        capacity = (len(features) if self.nuts.exact_capacity
                    else padded_capacity(len(features), self.nuts.min_capacity))
        data = make_model_data(features, capacity).as_jax()
        padded = np.ones(capacity)
        padded[: len(loss)] = loss
        padded = jnp.asarray(padded)
        init_key, chain_key, jitter_key = jax.random.split(rng_key, 3)
        start = time.perf_counter()
        chains = self.nuts.num_chains
        nuts = self.nuts
        lockstep = nuts.chain_method == "vectorized"
        task = self.progress.task(
            f"{label} on {len(loss)} runs ({chains} chain{'s' if chains > 1 else ''} x "
            f"{nuts.num_warmup}+{nuts.num_samples})",
            total=(1 if lockstep else chains) * (nuts.num_warmup + nuts.num_samples),
            unit="step",
        )
        warmup = data.warmup_steps is not None  # 2026 rows: the model has WARMUP_SITES
        if (capacity, nuisance, warmup) not in self._programs:
            task.note("compiling")
            logger.info("%s on %d runs: compiling the sampler (%d chains x %d + %d; once per "
                        "data size)", label, len(loss), chains, nuts.num_warmup,
                        nuts.num_samples)
        z_init, run, constrain, pointwise, mode = self._program(init_key, capacity, nuisance,
                                                                data, padded)
        z0 = self._last_z.get((nuisance, warmup))
        if z0 is None:
            if mode is not None:
                z_init, found = mode(z_init, data, padded)
                if not bool(found):
                    logger.info("%s: no usable posterior mode found; starting at the prior "
                                "median", label)
            # the start plus a small jitter per chain, so r-hat can see disagreement
            leaves, tree = jax.tree.flatten(z_init)
            keys = jax.random.split(jitter_key, len(leaves))
            z0 = jax.tree.unflatten(tree, [
                x[None] + 0.1 * jax.random.normal(k, (chains,) + jnp.shape(x))
                for x, k in zip(leaves, keys, strict=True)
            ])
        try:
            if self._channel is None:
                zs, stats = run(jax.random.split(chain_key, chains), z0, data, padded)
            else:
                with self._channel.attach(task):
                    zs, stats = run(jax.random.split(chain_key, chains), z0, data, padded)
                    jax.block_until_ready(zs)
                    jax.effects_barrier()
        finally:
            task.close()
        self._last_z[(nuisance, warmup)] = jax.tree.map(lambda x: x[:, -1], zs)
        flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), zs)
        constrained = constrain(flat, data, padded)
        m = len(loss)
        pointwise_ll = np.asarray(pointwise(constrained, data, padded))[:, :m]
        self.last_fit_seconds = time.perf_counter() - start
        samples = {
            k: np.asarray(v).reshape((chains, -1)) for k, v in constrained.items() if k != "loss"
        }
        diverging = np.asarray(stats["diverging"])
        divergences = int(np.sum(diverging))
        latent = _latent_names(nuisance, warmup)
        sites = latent + CORE_SITES + (NUISANCE_SITES if nuisance else ()) + ("E", "A", "B")
        # The discrepancy's prior draws (the data cannot inform them): one (tau, z) per draw.
        discrepancy = {
            k: v.reshape(chains, -1) for k, v in sample_discrepancy(
                jax.random.fold_in(rng_key, 7), self.prior, chains * self.nuts.num_samples
            ).items()
        }
        idata = build_inference_data(
            {k: samples[k] for k in dict.fromkeys(sites)}, discrepancy,
            _sample_stats(stats, chains), pointwise_ll.reshape(chains, -1, m),
            np.log(loss),
        )
        return Posterior(
            idata=idata,
            diagnostics=diagnose(idata, latent, divergences),
            prior=self.prior,
            nuisance=nuisance,
            data_range=DataRange.from_features(features),
            family=features.family,
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

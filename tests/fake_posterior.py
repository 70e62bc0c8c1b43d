"""A fake posterior implementing bayes_scaling.posterior.PosteriorQueries, from known law draws.

The mean loss is the plain Chinchilla law in ``(n_params, n_tokens)`` plus, optionally, a
learning-rate penalty ``c ln(lr / lr*)^2`` with ``lr* = lr0 (N / 1e8)^-0.33`` and a fixed
batch-size-256 offset, so tests can check that recommend() picks the optimal lr and batch size.
"""

from __future__ import annotations

import arviz as az
import jax
import numpy as np

from bayes_scaling.diagnostics import Diagnostics
from bayes_scaling.law import LawParams, optimal_allocation, predict_loss
from bayes_scaling.params import ASPECT_RATIO_BAND
from bayes_scaling.posterior import OptimumDraws

TRUE_LAW = {"E": 1.8, "A": 400.0, "B": 600.0, "alpha": 0.34, "beta": 0.36}


class FakePosterior:
    param_count = "non_embedding"
    nuisance = False

    def __init__(self, law=None, *, n_draws=400, seed=0, spread=0.02, sigma=0.02,
                 lr0=None, lr_curvature=0.05, bs256_offset=0.0):
        law = dict(TRUE_LAW if law is None else law)
        rng = np.random.default_rng(seed)
        self.draws = {
            name: value * np.exp(spread * rng.standard_normal(n_draws))
            for name, value in law.items()
        }
        self.sigma = sigma
        self.lr0 = lr0
        self.lr_curvature = lr_curvature
        self.bs256_offset = bs256_offset
        self.idata = az.from_dict(posterior={k: v[None, :] for k, v in self.draws.items()})
        self.diagnostics = Diagnostics(
            r_hat_max=1.002, ess_bulk_min=900.0, ess_tail_min=800.0, divergences=0, warnings=[]
        )
        self.num_draws = n_draws

    def law_params(self) -> LawParams:
        return LawParams(**{k: self.draws[k] for k in ("E", "A", "B", "alpha", "beta")})

    def _col(self, name):
        return {k: v[:, None] for k, v in self.draws.items()}[name]

    def optimal_learning_rate(self, features):
        n = np.asarray(features.n_params)[None, :]
        shape = (len(self.draws["E"]), n.shape[1])
        if self.lr0 is None:
            return np.full(shape, np.nan)
        return np.broadcast_to(self.lr0 * (n / 1e8) ** -0.33, shape).copy()

    def predict_mean(self, features):
        law = LawParams(**{k: self._col(k) for k in ("E", "A", "B", "alpha", "beta")})
        mean = np.asarray(predict_loss(law, features.n_params[None, :],
                                       features.n_tokens[None, :]))
        lr = np.asarray(features.learning_rate)
        if self.lr0 is not None:
            ratio = np.log(lr[None, :] / self.optimal_learning_rate(features))
            mean = mean + np.where(np.isfinite(ratio), self.lr_curvature * ratio**2, 0.0)
        bs = np.asarray(features.batch_size)
        mean = mean + np.where(bs == 256, self.bs256_offset, 0.0)[None, :]
        return mean

    def expected_loss(self, features):
        return self.predict_mean(features).mean(axis=0)

    def noise_sd(self, features):
        return np.full((len(self.draws["E"]), len(features.n_params)), self.sigma)

    def predictive_sd(self, features):
        return self.noise_sd(features)

    def preferred_aspect_ratio(self):
        return float(np.sqrt(ASPECT_RATIO_BAND[0] * ASPECT_RATIO_BAND[1]))

    def sample_predictive(self, rng_key, features):
        mean = self.predict_mean(features)
        return mean + self.sigma * np.asarray(jax.random.normal(rng_key, mean.shape))

    def optimum(self, flops):
        n, d = optimal_allocation(self.law_params(), flops)
        loss = predict_loss(self.law_params(), n, d)
        return OptimumDraws(np.asarray(n), np.asarray(d), np.asarray(loss))

    def optimal_size_median(self, flops):
        return float(np.exp(np.median(np.log(self.optimum(flops).n_params))))

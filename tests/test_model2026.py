"""The 2026 job-API rows' model terms: the warmup penalty and the early-plateau cap."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer import Predictive

from bayes_scaling.candidates2026 import law_features, training_config, warmup_steps
from bayes_scaling.errors import DataFormatError
from bayes_scaling.features import RunFeatures, features_from_configs
from bayes_scaling.inference import NutsConfig, Refitter
from bayes_scaling.law import mean_loss, warmup_penalty
from bayes_scaling.model import (
    NUISANCE_SITES,
    WARMUP_SITES,
    PriorConfig,
    make_model_data,
    scaling_model,
)
from bayes_scaling.params2026 import VOCAB_SIZE
from bayes_scaling.space import RunConfig

# width, depth, warmup fraction, batch, tokens, peak learning rate
RUNS = [(256, 4, 0.0, 64, 2**25, 3e-3), (256, 4, 0.05, 64, 2**25, 3e-3),
        (512, 8, 0.1, 128, 2**28, 1e-3), (384, 6, 0.02, 32, 2**24, 1e-2)]


def _configs():
    return [training_config(hidden_size=d, num_layers=layers, head_dim=64,
                            intermediate_size=int(64 * round(8 * d / 3 / 64)),
                            peak_learning_rate=lr, warmup_frac=w, batch_size=b, tokens=t,
                            max_runtime_seconds=100.0) for d, layers, w, b, t, lr in RUNS]


def _params(data, seed=0):
    """One prior draw of every site the 2026 model has."""
    draws = Predictive(scaling_model, num_samples=1)(
        jax.random.key(seed), data, prior=PriorConfig(), nuisance=True)
    return {k: jnp.asarray(v[0]) for k, v in draws.items() if k not in ("log_loss", "loss")}


def test_law_features_carry_each_runs_warmup_steps():
    configs = _configs()
    features = law_features(configs)
    # 2^25 tokens at batch 64: 1024 steps; 2^28 at 128: 4096; 2^24 at 32: 1024
    np.testing.assert_array_equal(features.warmup_steps, [0, 51, 409, 20])
    assert [warmup_steps(c) for c in configs] == [0, 51, 409, 20]
    assert features.take([2, 0]).warmup_steps.tolist() == [409, 0]
    both = RunFeatures.concat([features.take([0]), features.take([3])])
    assert both.warmup_steps.tolist() == [0, 20]
    assert features_from_configs([RunConfig(d_model=256, num_layers=4, num_heads=4,
                                            batch_size=128, learning_rate=1e-3,
                                            train_flops=10**17)]).warmup_steps is None


def test_run_features_reject_bad_warmup_steps():
    fields = law_features(_configs()).as_dict()
    with pytest.raises(DataFormatError, match="warmup_steps: expected 4 finite values >= 0"):
        RunFeatures(**{**fields, "warmup_steps": np.array([1.0, 2.0])})
    with pytest.raises(DataFormatError, match="warmup_steps"):
        RunFeatures(**{**fields, "warmup_steps": np.array([0.0, -1.0, 2.0, 3.0])})


def test_warmup_penalty_is_the_square_of_the_rate_ratio_decaying_with_warmup_steps():
    params = {"c_warm": 0.2, "log_w0": math.log(40.0)}
    x = jnp.array([0.0, 0.0, math.log(2.0), math.log(0.5), 0.0])
    steps = jnp.array([0.0, 40.0, 0.0, 0.0, 1e12])
    got = np.asarray(warmup_penalty(params, x, steps))
    np.testing.assert_allclose(got, [0.2, 0.2 / math.e, 0.8, 0.05, 0.0], rtol=1e-12)
    # a row with no warmup cost (padding, the target) has zero gradient, not NaN
    grad = jax.grad(lambda lw: warmup_penalty({"c_warm": 0.2, "log_w0": lw}, 0.0, 1e12))(3.0)
    assert float(grad) == 0.0


def test_mean_loss_adds_the_warmup_penalty_on_2026_rows_only():
    data = make_model_data(law_features(_configs()))
    params = _params(data)
    with_term = np.asarray(mean_loss(params, data, nuisance=True, prior=PriorConfig()))
    without = np.asarray(mean_loss(params, data._replace(warmup_steps=None), nuisance=True,
                                   prior=PriorConfig()))
    extra = with_term - without
    assert np.all(extra > 0)
    # same run, no warmup against 51 warmup steps: the unwarmed one pays more
    assert extra[0] > extra[1] * math.exp(51 / math.exp(float(params["log_w0"]))) * 0.9
    # a 2025 row ignores the 2026 sites: bit-for-bit the loss without them
    old = make_model_data(features_from_configs([RunConfig(
        d_model=256, num_layers=4, num_heads=4, batch_size=128, learning_rate=1e-3,
        train_flops=10**17)]))
    assert old.warmup_steps is None
    base = {k: v for k, v in params.items() if k not in WARMUP_SITES}
    np.testing.assert_array_equal(np.asarray(mean_loss(params, old, nuisance=True,
                                                       prior=PriorConfig())),
                                  np.asarray(mean_loss(base, old, nuisance=True,
                                                       prior=PriorConfig())))


def test_2026_rows_get_the_warmup_sites_and_the_plateau_prior():
    prior = PriorConfig(plateau_mean=7.0, plateau_sd=0.01, l_init_mean=10.0, l_init_sd=0.01,
                        warmup_w0_median=25.0, warmup_w0_log_sd=0.01)
    new = make_model_data(law_features(_configs()))
    draws = Predictive(scaling_model, num_samples=500)(jax.random.key(2), new, prior=prior,
                                                       nuisance=True)
    assert set(WARMUP_SITES) <= set(draws)
    assert float(np.mean(draws["l_init"])) == pytest.approx(7.0, abs=0.01)
    assert float(np.median(np.exp(draws["log_w0"]))) == pytest.approx(25.0, rel=0.01)
    assert float(np.mean(draws["c_warm"])) == pytest.approx(0.2 * math.sqrt(2 / math.pi),
                                                             rel=0.15)
    old = make_model_data(features_from_configs([RunConfig(
        d_model=256, num_layers=4, num_heads=4, batch_size=128, learning_rate=1e-3,
        train_flops=10**17)]))
    old_draws = Predictive(scaling_model, num_samples=200)(jax.random.key(2), old, prior=prior,
                                                           nuisance=True)
    assert not set(WARMUP_SITES) & set(old_draws)
    assert float(np.mean(old_draws["l_init"])) == pytest.approx(10.0, abs=0.01)
    assert not set(WARMUP_SITES) & set(NUISANCE_SITES)


def test_the_plateau_prior_is_centred_at_the_zipf_entropy_of_the_vocabulary():
    ranks = np.arange(1, VOCAB_SIZE + 1, dtype=np.float64)
    p = 1.0 / ranks / np.sum(1.0 / ranks)
    assert PriorConfig().plateau_mean == pytest.approx(-np.sum(p * np.log(p)), abs=0.01)


def test_a_tiny_fit_on_2026_runs_samples_and_predicts_with_the_warmup_sites():
    configs = _configs()
    features = law_features(configs)
    loss = np.array([5.6, 5.4, 4.2, 6.3])
    nuts = NutsConfig(num_warmup=20, num_samples=20, num_chains=1, min_capacity=8)
    posterior = Refitter(nuts=nuts).fit(jax.random.key(3), features, loss)
    for name in WARMUP_SITES:
        assert posterior.draws[name].shape == (20,)
    # the 2026 sites are part of the fitted latent sites the diagnostics are taken over
    assert set(WARMUP_SITES) <= set(posterior.idata.posterior.data_vars)
    mean = posterior.predict_mean(features)
    assert mean.shape == (20, 4) and np.all(np.isfinite(mean))
    # without a stated schedule (the target's rows) the warmup costs nothing
    bare = RunFeatures(**{**features.as_dict(), "warmup_steps": None})
    gap = mean - posterior.predict_mean(bare)
    assert np.all(gap >= -1e-12) and np.all(gap[:, 0] >= gap[:, 1])

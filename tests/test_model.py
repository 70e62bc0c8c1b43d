import dataclasses

import jax
import numpy as np
import pytest
from numpyro.infer import Predictive

from bayes_scaling.errors import BayesScalingError
from bayes_scaling.features import features_from_configs, features_from_generic
from bayes_scaling.model import PriorConfig, make_model_data, mean_loss, scaling_model
from bayes_scaling.params import non_embedding_params
from bayes_scaling.space import RunConfig


def _configs():
    return [
        RunConfig(d_model=256, num_layers=4, num_heads=4, batch_size=128, learning_rate=5e-4,
                  train_flops=int(1e16)),
        RunConfig(d_model=512, num_layers=8, num_heads=8, batch_size=256, learning_rate=1e-3,
                  train_flops=int(1e17)),
        RunConfig(d_model=64, num_layers=2, num_heads=2, batch_size=128, learning_rate=1e-4,
                  train_flops=int(1e13)),
    ]


def test_features_from_configs_counts_and_tokens():
    f = features_from_configs(_configs())
    assert len(f) == 3
    assert f.n_params[0] == non_embedding_params(256, 4)
    np.testing.assert_allclose(f.n_tokens, f.flops / (6 * f.n_params))
    assert f.is_config.all()


def test_features_from_generic_marks_rows_generic():
    f = features_from_generic([1e8, 1e9], [2e9, 2e10])
    assert not f.is_config.any()
    np.testing.assert_allclose(f.flops, [1.2e18, 1.2e20])
    with pytest.raises(BayesScalingError):
        features_from_generic([1e8], [1e9, 1e10])


def test_prior_config_rejects_bad_values():
    with pytest.raises(BayesScalingError, match="expected a finite positive number"):
        PriorConfig(e_log_sd=-1.0)


def test_saved_priors_of_old_reports_set_both_exponents():
    old = PriorConfig.from_saved({"exponent_mean": 0.3, "exponent_sd": 0.1, "e_median": 2.0})
    assert (old.alpha_mean, old.beta_mean, old.alpha_sd, old.beta_sd) == (0.3, 0.3, 0.1, 0.1)
    assert old.e_median == 2.0
    new = PriorConfig(alpha_mean=0.25, beta_sd=0.2)
    assert PriorConfig.from_saved(dataclasses.asdict(new)) == new
    with pytest.raises(BayesScalingError, match="unknown hyperparameters zeta_sd"):
        PriorConfig.from_saved({"zeta_sd": 1.0})


def test_padding_and_capacity():
    data = make_model_data(features_from_configs(_configs()), capacity=8)
    assert data.mask.tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    with pytest.raises(BayesScalingError):
        make_model_data(features_from_configs(_configs()), capacity=2)


def test_prior_predictive_is_sane():
    f = features_from_configs(_configs())
    data = make_model_data(f, capacity=4)
    draws = Predictive(scaling_model, num_samples=400)(
        jax.random.key(0), data, prior=PriorConfig(), nuisance=True
    )
    loss = np.asarray(draws["loss"])[:, :3]
    assert loss.shape == (400, 3)
    assert np.all(np.isfinite(loss)) and np.all(loss > 0)
    med = np.median(loss, axis=0)
    # the soft cap keeps tiny runs near ln(32000); bigger runs are lower
    assert 9.0 < med[2] < 11.5
    assert 2.0 < med[1] < med[0] < med[2]


def test_mean_loss_generic_is_chinchilla():
    f = features_from_generic([1e9], [2e10])
    data = make_model_data(f)
    prior = PriorConfig()
    params = {"e": np.log(1.7), "a_c": np.log(0.8), "b_c": np.log(0.5), "alpha": 0.34,
              "beta": 0.28, "sigma": 0.01}
    got = float(mean_loss(params, data, nuisance=False, prior=prior)[0])
    want = 1.7 + 0.8 * (1e9 / prior.n_ref) ** -0.34 + 0.5 * (2e10 / prior.d_ref) ** -0.28
    assert got == pytest.approx(want, rel=1e-12)


def test_a_branch_no_row_takes_is_left_out_and_mixed_rows_get_the_same_values():
    from bayes_scaling.features import RunFeatures
    from bayes_scaling.model import likelihood_scale, sample_params

    prior = PriorConfig()
    api_f = features_from_configs(_configs())
    gen_f = features_from_generic([1e7, 1e8, 1e10], [1e11, 1e10, 1e8])
    api, gen = make_model_data(api_f), make_model_data(gen_f)
    assert api.log_n is None and api.log_tokens is None and api.is_config is not None
    assert gen.is_config is None and gen.log_n is not None
    mixed = make_model_data(RunFeatures.concat([api_f, gen_f]), capacity=8)
    assert mixed.is_config.tolist() == [1, 1, 1, 0, 0, 0, 0, 0] and mixed.log_n is not None
    params = Predictive(sample_params, num_samples=1)(
        jax.random.key(3), prior, api, nuisance=True)
    params = {k: v[0] for k, v in params.items()}
    params.update(sigma=0.02, s_far=1.5)
    split = [(mean_loss(params, d, nuisance=True, prior=prior), d) for d in (api, gen)]
    mu = mean_loss(params, mixed, nuisance=True, prior=prior)
    np.testing.assert_allclose(mu[:6], np.concatenate([m for m, _ in split]), rtol=1e-13)
    scale = likelihood_scale(params, mixed, mu, prior=prior)
    np.testing.assert_allclose(
        scale[:6], np.concatenate([likelihood_scale(params, d, m, prior=prior)
                                   for m, d in split]), rtol=1e-13)
    # generic rows alone: the core law, whether or not the nuisance terms are on
    np.testing.assert_array_equal(split[1][0], mean_loss(params, gen, nuisance=False,
                                                         prior=prior))


def test_nuisance_priors_come_from_prior_config():
    data = make_model_data(features_from_configs(_configs()))
    prior = PriorConfig(lam_beta_a=8.0, lam_beta_b=2.0, ar0_median=40.0, ar0_log_sd=0.01,
                        l_init_mean=9.0, l_init_sd=0.01)
    draws = Predictive(scaling_model, num_samples=2000)(
        jax.random.key(1), data, prior=prior, nuisance=True)
    assert float(np.mean(draws["lam"])) == pytest.approx(0.8, abs=0.02)
    assert float(np.median(np.exp(draws["log_ar0"]))) == pytest.approx(40.0, rel=0.01)
    assert float(np.mean(draws["l_init"])) == pytest.approx(9.0, abs=0.01)


def test_likelihood_widens_generic_rows_by_isoflop_distance_and_api_rows_by_loss_gap():
    from bayes_scaling.law import frontier_gap, isoflop_distance
    from bayes_scaling.model import likelihood_scale

    prior = PriorConfig()
    params = {"e": np.log(1.8), "a_c": np.log(0.7), "b_c": np.log(0.5), "alpha": 0.34,
              "beta": 0.36, "sigma": 0.02, "s_far": 1.5}
    generic = make_model_data(features_from_generic([1e7, 1e8, 1e10], [1e11, 1e10, 1e8]))
    mu = mean_loss(params, generic, nuisance=False, prior=prior)
    scale = np.asarray(likelihood_scale(params, generic, mu, prior=prior))
    x = np.asarray(isoflop_distance(params, generic.log_n, generic.log_flops, prior=prior))
    np.testing.assert_allclose(scale, 0.02 * (1.0 + 1.5 * x), rtol=1e-12)
    assert x[2] > 2.0 and scale[2] > 2 * scale[1]  # a 100x too large model is widened
    api = make_model_data(features_from_configs(_configs()))
    mu_api = np.array([5.0, 4.0, 10.0])
    got = np.asarray(likelihood_scale(params, api, mu_api, prior=prior))
    gap = np.asarray(frontier_gap(params, api.log_flops, mu_api, prior=prior))
    np.testing.assert_allclose(got, 0.02 * (1.0 + 1.5 * gap), rtol=1e-12)

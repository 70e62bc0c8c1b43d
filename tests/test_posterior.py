"""The Posterior behind its declared protocol: one store of draws, padding and memo inside."""

import dataclasses

import arviz as az
import jax
import numpy as np
import pytest
from numpyro.infer import Predictive

from bayes_scaling.diagnostics import diagnose
from bayes_scaling.features import features_from_configs, features_from_generic
from bayes_scaling.model import CORE_LATENT, PriorConfig, make_model_data, scaling_model
from bayes_scaling.posterior import DISCREPANCY_GROUP, Posterior, PosteriorQueries
from bayes_scaling.space import RunConfig
from fake_posterior import FakePosterior


@pytest.fixture(scope="module")
def generic_posterior():
    """Prior-predictive draws of the generic model stand in for a fit (2 chains x 100)."""
    features = features_from_generic(np.geomspace(1e7, 1e9, 6), np.geomspace(1e9, 1e11, 6))
    data = make_model_data(features)
    prior = PriorConfig()
    draws = Predictive(scaling_model, num_samples=200)(
        jax.random.key(0), data, prior=prior, nuisance=False)
    posterior = {k: np.asarray(v).reshape(2, 100) for k, v in draws.items()
                 if k not in ("log_loss", "loss")}
    discrepancy = {"tau_x": np.full((2, 100), 0.02), "z_x": np.ones((2, 100))}
    idata = az.from_dict(posterior=posterior, **{DISCREPANCY_GROUP: discrepancy})
    from bayes_scaling.model import DataRange

    return Posterior(idata=idata, diagnostics=diagnose(idata, CORE_LATENT, 0), prior=prior,
                     nuisance=False, data_range=DataRange.from_features(features))


def test_posterior_and_the_test_fake_implement_the_protocol(generic_posterior):
    assert isinstance(generic_posterior, PosteriorQueries)
    assert isinstance(FakePosterior(), PosteriorQueries)


def test_draws_are_a_read_only_view_of_idata(generic_posterior):
    post = generic_posterior
    np.testing.assert_array_equal(post.draws["alpha"],
                                  post.idata.posterior["alpha"].values.reshape(-1))
    assert post.draws["tau_x"].shape == (200,) and post.num_draws == 200
    with pytest.raises(ValueError):
        post.draws["alpha"][0] = 1.0
    changed = post.with_draws(tau_x=np.zeros(200))
    assert np.all(changed.draws["tau_x"] == 0) and "tau_x" in changed.idata[DISCREPANCY_GROUP]
    np.testing.assert_array_equal(changed.draws["alpha"], post.draws["alpha"])
    added = post.with_draws(extra=np.arange(200.0))
    np.testing.assert_array_equal(added.draws["extra"], np.arange(200.0))


def test_optimum_is_memoised_per_compute(generic_posterior):
    post = dataclasses.replace(generic_posterior)
    first = post.optimum(1e19)
    assert post.optimum(1e19) is first
    assert post.optimum(1e20) is not first


def test_predictions_do_not_depend_on_padding(generic_posterior):
    post = generic_posterior
    many = features_from_generic(np.geomspace(1e7, 1e10, 70), np.geomspace(1e9, 1e12, 70))
    few = many.take(np.arange(3))
    np.testing.assert_allclose(post.predict_mean(few), post.predict_mean(many)[:, :3])
    key = jax.random.key(4)
    assert post.sample_predictive(key, few).shape == (200, 3)
    np.testing.assert_allclose(post.sample_predictive(key, few),
                               post.sample_predictive(key, many.take(np.arange(60)))[:, :3])


def test_student_t_noise_is_a_function_of_the_key_with_the_t_distribution():
    from scipy import stats

    from bayes_scaling.posterior import student_t_draws

    key = jax.random.key(11)
    draws = student_t_draws(key, 5.0, (400, 50))
    assert draws.shape == (400, 50)
    np.testing.assert_array_equal(draws, student_t_draws(jax.random.key(11), 5.0, (400, 50)))
    np.testing.assert_array_equal(draws, student_t_draws(jax.random.PRNGKey(11), 5.0, (400, 50)))
    assert not np.allclose(draws, student_t_draws(jax.random.key(12), 5.0, (400, 50)))
    # the t with 5 degrees of freedom, not a normal: KS against each (20,000 draws)
    assert stats.kstest(draws.ravel(), stats.t(5.0).cdf).pvalue > 1e-3
    assert stats.kstest(draws.ravel(), stats.norm(scale=np.sqrt(5 / 3)).cdf).pvalue < 1e-3


def test_generic_posterior_has_no_learning_rate_and_a_central_aspect_ratio(generic_posterior):
    f = features_from_configs([RunConfig(d_model=256, num_layers=4, num_heads=4, batch_size=128,
                                         learning_rate=1e-3, train_flops=int(1e16))])
    assert np.isnan(generic_posterior.optimal_learning_rate(f)).all()
    assert generic_posterior.preferred_aspect_ratio() == pytest.approx(np.sqrt(32 * 256))

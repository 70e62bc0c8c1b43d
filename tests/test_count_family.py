"""The law's N in 2026 counts: features, the model's tokens, the optimum and the recommendation."""

import arviz as az
import jax
import numpy as np
import pytest
from numpyro.infer import Predictive

from bayes_scaling.candidates2026 import LAW_FAMILY, law_features, training_config
from bayes_scaling.count_family import FAMILY_2025, family_2026, intermediate_size_for
from bayes_scaling.diagnostics import diagnose
from bayes_scaling.features import features_from_configs
from bayes_scaling.law import log_tokens, mean_loss
from bayes_scaling.model import CORE_LATENT, DataRange, PriorConfig, make_model_data, scaling_model
from bayes_scaling.params import block_params, embedding_side_params, non_embedding_params
from bayes_scaling.params2026 import architecture_2026, count_params_2026
from bayes_scaling.posterior import DISCREPANCY_GROUP, Posterior
from bayes_scaling.recommend import recommend
from bayes_scaling.space import RunConfig
from fake_posterior import FakePosterior

# widths, depths, head dims, intermediate sizes, batch sizes, tokens of 2026 runs
RUNS = [(256, 4, 64, 704, 64, 2e8), (384, 6, 32, 1024, 128, 5e8), (512, 8, 128, 2048, 32, 1e9),
        (768, 3, 64, 768, 256, 3e9), (1024, 12, 64, 2752, 128, 8e9)]


def configs_2026():
    return [training_config(hidden_size=d, num_layers=L, head_dim=hd, intermediate_size=f,
                            peak_learning_rate=1e-3, warmup_frac=0.05, batch_size=b, tokens=t,
                            max_runtime_seconds=100.0) for d, L, hd, f, b, t in RUNS]


def test_2026_features_count_each_run_on_its_own_architecture():
    configs = configs_2026()
    features = law_features(configs)
    assert features.family == LAW_FAMILY
    counts = [count_params_2026(c.architecture_config) for c in configs]
    np.testing.assert_array_equal(features.n_params, [c.non_embedding for c in counts])
    np.testing.assert_array_equal(features.block_params, features.n_params)
    np.testing.assert_array_equal(features.embedding_params,
                                  [c.total - c.non_embedding for c in counts])
    np.testing.assert_array_equal(features.flops_embedding_params, 0.0)
    np.testing.assert_allclose(features.n_tokens, [c.total_train_tokens for c in configs],
                               rtol=1e-12)
    # a wider MLP at the same width and depth is a bigger model for the law
    assert features.n_params[2] > non_embedding_params(512, 8) - 32000 * 512


def test_the_models_tokens_are_a_2026_runs_tokens_whatever_omega():
    configs = configs_2026()
    data = make_model_data(law_features(configs))
    for omega in (0.0, 0.3, 0.9):
        np.testing.assert_allclose(np.exp(log_tokens({"omega": omega}, data)),
                                   [c.total_train_tokens for c in configs], rtol=1e-9)
    rows = [RunConfig(d_model=256, num_layers=4, num_heads=4, batch_size=128,
                      learning_rate=1e-3, train_flops=10**17)]
    old = make_model_data(features_from_configs(rows))  # a 2025 row: omega moves its tokens
    assert np.exp(log_tokens({"omega": 0.9}, old))[0] < np.exp(log_tokens({"omega": 0.0}, old))[0]


def test_2025_features_and_model_data_are_the_2025_closed_forms():
    rows = [RunConfig(d_model=d, num_layers=L, num_heads=d // 64, batch_size=128,
                      learning_rate=3e-4, train_flops=10**16) for d, L in [(128, 2), (512, 8)]]
    features = features_from_configs(rows)
    assert features.family == FAMILY_2025
    d = features.d_model
    np.testing.assert_array_equal(features.block_params, block_params(d, features.num_layers))
    np.testing.assert_array_equal(features.embedding_params, embedding_side_params(d))
    np.testing.assert_array_equal(features.flops_embedding_params, embedding_side_params(d))
    data = make_model_data(features)
    implicit = data._replace(block=None, emb=None, emb_flops=None)  # the law's own closed forms
    params = {k: 0.3 for k in ("e", "a_c", "b_c", "lam", "omega", "l0", "a_lr", "b_lr", "c_bs",
                               "p_lr", "k_c", "c_hi", "k_hi", "c_deep", "c_wide", "log_ar0")}
    params.update(alpha=0.34, beta=0.28, gamma=0.3, k_cap=3.0, l_init=10.0)
    prior = PriorConfig()
    np.testing.assert_array_equal(mean_loss(params, data, nuisance=True, prior=prior),
                                  mean_loss(params, implicit, nuisance=True, prior=prior))


@pytest.mark.parametrize("head_dim, ratio", [(64, 8 / 3), (128, 4.0), (32, 2.0)])
def test_family_counts_equal_the_pytorch_model(head_dim, ratio):
    family = family_2026(head_dim=head_dim, intermediate_ratio=ratio)
    for d, L in [(128, 1), (256, 3), (640, 7), (1024, 16), (2048, 24)]:
        block, emb, emb_flops, n = family.counts(d, L)
        arch = architecture_2026(d, L, d // head_dim, intermediate_size_for(d, ratio),
                                 head_dim=head_dim)
        counts = count_params_2026(arch)
        assert int(n) == int(block) == counts.non_embedding
        assert int(emb) == counts.total - counts.non_embedding and float(emb_flops) == 0.0
        assert family.exact_counts(d, L) == (counts.non_embedding, counts.total)


@pytest.fixture(scope="module")
def posterior_2026():
    """Prior draws of the full model on 2026 features stand in for a fit (1 chain x 64)."""
    features = law_features(configs_2026())
    prior = PriorConfig()
    draws = Predictive(scaling_model, num_samples=64)(
        jax.random.key(1), make_model_data(features), prior=prior, nuisance=True)
    posterior = {k: np.asarray(v).reshape(1, 64) for k, v in draws.items()
                 if k not in ("log_loss", "loss")}
    discrepancy = {"tau_x": np.zeros((1, 64)), "z_x": np.zeros((1, 64))}
    idata = az.from_dict(posterior=posterior, **{DISCREPANCY_GROUP: discrepancy})
    return Posterior(idata=idata, diagnostics=diagnose(idata, CORE_LATENT, 0), prior=prior,
                     nuisance=True, data_range=DataRange.from_features(features),
                     family=features.family)


def test_a_2026_posteriors_optimum_is_counted_in_2026_units(posterior_2026):
    optimum = posterior_2026.optimum(1e20)
    n = LAW_FAMILY.counts(optimum.d_model, optimum.num_layers)[3]
    np.testing.assert_array_equal(optimum.n_params, n)
    np.testing.assert_allclose(6 * optimum.n_params * optimum.n_tokens, 1e20, rtol=1e-12)
    assert not np.allclose(optimum.n_params,
                           non_embedding_params(optimum.d_model, optimum.num_layers))


def test_2026_predictions_do_not_depend_on_omega(posterior_2026):
    features = law_features(configs_2026())
    moved = posterior_2026.with_draws(omega=posterior_2026.draws["omega"] * 0 + 0.9)
    np.testing.assert_allclose(moved.predict_mean(features), posterior_2026.predict_mean(features))


def test_recommend_counts_the_shape_in_the_family_it_is_given():
    family = family_2026(head_dim=128, intermediate_ratio=4.0)
    rec = recommend(jax.random.key(0), FakePosterior(lr0=2e-3), 1e20, family=family)
    arch = architecture_2026(rec.d_model, rec.num_layers, rec.d_model // 128,
                             intermediate_size_for(rec.d_model, 4.0), head_dim=128)
    counts = count_params_2026(arch)
    assert rec.num_heads == rec.d_model // 128
    assert (rec.non_embedding_params, rec.total_params) == (counts.non_embedding, counts.total)
    assert rec.tokens == pytest.approx(1e20 / (6 * counts.non_embedding))


def test_predict_refuses_a_2026_run_folder(tmp_path):
    from bayes_scaling.errors import DataFormatError
    from bayes_scaling.posterior_io import load_posterior

    for name in ("posterior.nc", "runs.csv"):
        (tmp_path / name).write_text("")
    (tmp_path / "report.json").write_text('{\n  "api": "2026"\n}\n')
    with pytest.raises(DataFormatError, match="2026 API"):
        load_posterior(tmp_path)

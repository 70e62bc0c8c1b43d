"""The recommendation: the shape grid, the shape rules and generic rows."""

import jax
import numpy as np
import pytest

from bayes_scaling.errors import InvalidConfigError
from bayes_scaling.features import features_from_configs
from bayes_scaling.params import ASPECT_RATIO_BAND, count_params
from bayes_scaling.recommend import candidate_shapes, recommend
from fake_posterior import FakePosterior


def test_candidate_shapes_respect_grid_and_band():
    d, layers, n = candidate_shapes()
    assert d.min() == 64 and d.max() == 8192 and np.all(d % 64 == 0)
    assert layers.min() >= 1 and layers.max() <= 128
    ratio = d / layers
    assert ratio.min() >= ASPECT_RATIO_BAND[0] and ratio.max() <= ASPECT_RATIO_BAND[1]
    i = 17
    assert n[i] == count_params(int(d[i]), int(layers[i]), int(d[i]) // 64).non_embedding


def test_recommend_matches_posterior_median_and_optima():
    posterior = FakePosterior(lr0=6e-4, bs256_offset=-0.01)
    rec = recommend(jax.random.PRNGKey(0), posterior, 1e19, shape_rule="n_opt_median")
    n_median = np.median(posterior.optimum(1e19).n_params)
    assert abs(np.log(rec.non_embedding_params / n_median)) < 0.05
    assert rec.num_heads * 64 == rec.d_model
    assert 32 <= rec.d_model / rec.num_layers <= 256
    counts = count_params(rec.d_model, rec.num_layers, rec.num_heads)
    assert (rec.non_embedding_params, rec.total_params) == (counts.non_embedding, counts.total)
    assert rec.tokens == pytest.approx(1e19 / (6 * counts.non_embedding))
    assert rec.batch_size == 256  # the fake makes 256 better
    expected_lr = 6e-4 * (counts.non_embedding / 1e8) ** -0.33
    assert rec.learning_rate == pytest.approx(expected_lr, rel=1e-6)
    assert rec.learning_rate_source == "posterior"
    assert rec.predicted_loss.shape == (400,)
    mean = np.mean(posterior.predict_mean(features_from_configs([rec.config()])))
    assert np.median(rec.predicted_loss) == pytest.approx(mean, abs=0.05)


def test_expected_loss_rule_is_default_and_minimises_posterior_mean_loss():
    posterior = FakePosterior(lr0=6e-4)
    rec = recommend(jax.random.PRNGKey(0), posterior, 1e19)
    assert rec.shape_rule == "expected_loss"
    low, high = np.quantile(posterior.optimum(1e19).n_params, [0.05, 0.95])
    assert low <= rec.non_embedding_params <= high
    median_rule = recommend(jax.random.PRNGKey(0), posterior, 1e19, shape_rule="n_opt_median")

    def mean_loss(r):
        return float(np.mean(posterior.predict_mean(features_from_configs([r.config()]))))

    assert mean_loss(rec) <= mean_loss(median_rule) + 1e-4  # ties within 1e-4 nats go to AR ~90
    assert 45 <= rec.aspect_ratio <= 180


def test_recommend_rejects_bad_input():
    with pytest.raises(InvalidConfigError, match="target_flops"):
        recommend(jax.random.PRNGKey(0), FakePosterior(), -1.0)
    with pytest.raises(InvalidConfigError, match="shape_rule"):
        recommend(jax.random.PRNGKey(0), FakePosterior(), 1e19, shape_rule="nope")


@pytest.mark.slow
def test_recommend_rules_experiment_smoke(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "experiments" / "recommend_rules.py"
    spec = importlib.util.spec_from_file_location("recommend_rules", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "rules.md"
    table = module.main(["--seeds", "1", "--warmup", "20", "--samples", "20", "--chains", "1",
                         "--out", str(out)])
    assert "| expected_loss |" in table and "| n_opt_median |" in table and out.exists()


@pytest.mark.parametrize("target", [1e17, 1e19, 1e21])
def test_recommended_shapes_are_ones_practitioners_train(target):
    rec = recommend(jax.random.PRNGKey(0), FakePosterior(lr0=6e-4), target)
    assert rec.d_model % 64 == 0 and rec.d_model // rec.num_heads == 64
    assert rec.num_heads >= 2 and rec.num_heads % 2 == 0  # never 1 or an odd count such as 17
    d, _, _ = candidate_shapes(practical=True)
    assert d.min() == 128 and np.all((d // 64) % 2 == 0)


def test_generic_recommendation_has_no_invented_architecture():
    posterior = FakePosterior()
    rec = recommend(jax.random.PRNGKey(0), posterior, 1e19, generic=True)
    assert rec.generic and rec.d_model is None and rec.learning_rate is None
    assert rec.batch_size is None and rec.num_heads is None and rec.total_params is None
    n_median = np.median(posterior.optimum(1e19).n_params)
    assert rec.non_embedding_params == pytest.approx(n_median, rel=1e-6)
    assert rec.tokens == pytest.approx(1e19 / (6 * rec.non_embedding_params))
    assert rec.predicted_loss.shape == (400,)
    with pytest.raises(InvalidConfigError, match="generic"):
        rec.config()

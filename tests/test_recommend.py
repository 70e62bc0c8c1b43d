import dataclasses

import jax
import numpy as np
import pytest

from bayes_scaling.errors import InvalidConfigError
from bayes_scaling.features import features_from_configs
from bayes_scaling.params import count_params
from bayes_scaling.recommend import (
    ASPECT_RATIO_BAND,
    candidate_shapes,
    default_learning_rate,
    recommend,
)
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


def test_recommend_without_lr_or_bs_terms_uses_defaults():
    rec = recommend(jax.random.PRNGKey(1), FakePosterior(), 1e19)
    assert rec.batch_size == 128
    assert rec.learning_rate_source == "default"
    assert rec.learning_rate == pytest.approx(default_learning_rate(rec.non_embedding_params))
    assert 1e-4 < rec.learning_rate < 6e-4


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


def test_outside_explored_flags_how_far_each_value_is():
    from bayes_scaling.recommend import outside_explored
    from bayes_scaling.space import RunConfig

    runs = features_from_configs([
        RunConfig(d_model=d, num_layers=layers, num_heads=heads, batch_size=128,
                  learning_rate=lr, train_flops=int(1e16))
        for d, layers, heads, lr in ((128, 2, 2, 1e-4), (512, 8, 8, 1e-3), (256, 4, 16, 5e-4))
    ])
    rec = recommend(jax.random.PRNGKey(0), FakePosterior(lr0=6e-4), 1e19)
    flags = {f["name"]: f for f in outside_explored(rec, runs)}
    heads = flags["num_heads"]
    assert heads["side"] == "above" and heads["explored"] == [2.0, 16.0]
    assert heads["factor"] == pytest.approx(rec.num_heads / 16)
    if rec.learning_rate < 1e-4:
        assert flags["learning_rate"]["factor"] == pytest.approx(1e-4 / rec.learning_rate)
    assert "batch_size" not in flags  # 128 was explored
    ratio = rec.aspect_ratio
    assert ("aspect_ratio" in flags) == (not 16.0 <= ratio <= 64.0)
    inside = outside_explored(rec, features_from_configs([rec.config()]))
    assert inside == []


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


def test_learning_rate_choice_weighs_an_uncertain_lr_star():
    # lr* uncertain by a factor ~e, loss cheap above lr* and dear below it: the expected-loss
    # choice sits above the median lr*, and the interval reports lr*'s spread
    class UncertainLr(FakePosterior):
        def __init__(self):
            super().__init__(lr0=6e-4)
            self.shift = np.random.default_rng(1).standard_normal(self.num_draws)

        def optimal_learning_rate(self, features):
            return super().optimal_learning_rate(features) * np.exp(self.shift)[:, None]

        def predict_mean(self, features):
            law_only = FakePosterior.predict_mean(self.without_lr(), features)
            x = np.log(np.asarray(features.learning_rate)[None, :]
                       / self.optimal_learning_rate(features))
            return law_only + 0.2 * np.maximum(-x, 0.0) ** 2 + 0.01 * np.maximum(x, 0.0) ** 2

        def without_lr(self):
            plain = FakePosterior()
            plain.draws = self.draws
            return plain

    posterior = UncertainLr()
    rec = recommend(jax.random.PRNGKey(0), posterior, 1e19)
    lr_draws = posterior.optimal_learning_rate(features_from_configs([rec.config()]))[:, 0]
    assert rec.learning_rate > 1.5 * np.median(lr_draws)
    lo, hi = np.quantile(rec.intervals["learning_rate"], [0.05, 0.95])
    assert lo < np.median(lr_draws) < hi and hi / lo > 10


def test_learning_rate_max_caps_the_choice_and_says_so():
    posterior = FakePosterior(lr0=5e-3)  # lr* at the target ~4-5x the cap
    free = recommend(jax.random.PRNGKey(0), posterior, 1e19)
    capped = recommend(jax.random.PRNGKey(0), posterior, 1e19, learning_rate_max=1e-3)
    assert free.learning_rate > 2e-3 and free.learning_rate_source == "posterior"
    assert capped.learning_rate == pytest.approx(1e-3)
    assert capped.learning_rate_source == "posterior, capped at the explored maximum"
    from bayes_scaling.recommend import outside_explored

    runs = _runs_at_learning_rates(1e-4, 1e-3)
    flags = {f["name"]: f for f in outside_explored(capped, runs)}
    assert "learning_rate" not in flags  # the recommendation stays inside
    lr_star = flags["optimal_learning_rate_ci90_high"]  # the posterior's lr* does not
    assert lr_star["side"] == "above" and lr_star["factor"] > 2
    # a cap above the posterior's choice changes nothing
    loose = recommend(jax.random.PRNGKey(0), posterior, 1e19, learning_rate_max=5e-2)
    assert loose.learning_rate == free.learning_rate and loose.learning_rate_source == "posterior"
    with pytest.raises(InvalidConfigError, match="learning_rate_max"):
        recommend(jax.random.PRNGKey(0), posterior, 1e19, learning_rate_max=0.0)


def _runs_at_learning_rates(*learning_rates):
    from bayes_scaling.space import RunConfig

    return features_from_configs([RunConfig(d_model=256, num_layers=4, num_heads=4,
                                            batch_size=128, learning_rate=lr,
                                            train_flops=int(1e16)) for lr in learning_rates])


def test_learning_rate_min_caps_the_choice_from_below_and_says_how_far_lr_star_is():
    from bayes_scaling.recommend import outside_explored

    posterior = FakePosterior(lr0=5e-5)  # lr* at the target ~2e-5, below every tried lr
    free = recommend(jax.random.PRNGKey(0), posterior, 1e19)
    capped = recommend(jax.random.PRNGKey(0), posterior, 1e19, learning_rate_min=1e-4,
                       learning_rate_max=1e-3)
    assert free.learning_rate < 5e-5 and free.learning_rate_source == "posterior"
    assert capped.learning_rate == pytest.approx(1e-4)
    assert capped.learning_rate_source == "posterior, capped at the explored minimum"
    runs = _runs_at_learning_rates(1e-4, 1e-3)
    flags = {f["name"]: f for f in outside_explored(capped, runs)}
    assert "learning_rate" not in flags  # the recommendation stays inside
    lr_star = posterior.optimal_learning_rate(features_from_configs([capped.config()]))[0, 0]
    median = flags["optimal_learning_rate_median"]  # the posterior's lr* does not
    assert median["side"] == "below" and median["factor"] == pytest.approx(1e-4 / lr_star)
    assert flags["optimal_learning_rate_ci90_low"]["side"] == "below"
    assert "optimal_learning_rate_ci90_high" not in flags
    # uncapped, the recommendation itself is flagged below the explored range
    assert {f["name"]: f for f in outside_explored(free, runs)}["learning_rate"]["side"] == "below"
    # a floor below the posterior's choice changes nothing
    loose = recommend(jax.random.PRNGKey(0), posterior, 1e19, learning_rate_min=1e-5)
    assert loose.learning_rate == free.learning_rate and loose.learning_rate_source == "posterior"
    with pytest.raises(InvalidConfigError, match="learning_rate_min"):
        recommend(jax.random.PRNGKey(0), posterior, 1e19, learning_rate_min=0.0)
    with pytest.raises(InvalidConfigError, match="learning_rate_min: expected at most"):
        recommend(jax.random.PRNGKey(0), posterior, 1e19, learning_rate_min=2e-3,
                  learning_rate_max=1e-3)


def test_gap_to_optimum_splits_what_lies_between_the_prediction_and_the_optimum():
    posterior = FakePosterior(lr0=5e-3)  # lr* at the target ~4-5x the cap
    capped = recommend(jax.random.PRNGKey(0), posterior, 1e19, learning_rate_max=1e-3)
    free = recommend(jax.random.PRNGKey(0), posterior, 1e19)
    optimum_loss = posterior.optimum(1e19).loss

    def expected(*configs):
        return posterior.expected_loss(features_from_configs(list(configs)))

    gap = capped.gap_to_optimum
    assert gap["capped"] and capped.learning_rate == pytest.approx(1e-3)
    assert gap["total"] == pytest.approx(np.median(capped.predicted_loss)
                                         - np.median(optimum_loss))
    # the cap's cost at this shape: against its best batch and learning rate without the cap,
    # found here by brute force over both
    at_shape = min(float(expected(*[
        dataclasses.replace(capped.config(), batch_size=bs, learning_rate=float(lr))
        for lr in np.geomspace(1e-4, 1e-2, 401)]).min()) for bs in (128, 256))
    assert gap["expected_loss"]["recommended"] == pytest.approx(expected(capped.config())[0])
    assert gap["expected_loss"]["at_free_learning_rate"] == pytest.approx(at_shape, abs=1e-5)
    assert gap["learning_rate_cap"] == pytest.approx(expected(capped.config())[0] - at_shape,
                                                     abs=1e-5)
    assert gap["learning_rate_cap"] > 0.01
    # what the cap moved the shape to, and one configuration against each draw's own optimum
    assert gap["uncapped"] == {"d_model": free.d_model, "num_layers": free.num_layers,
                               "num_heads": free.num_heads, "batch_size": free.batch_size,
                               "learning_rate": free.learning_rate}
    assert gap["shape_under_cap"] == pytest.approx(at_shape - expected(free.config())[0],
                                                   abs=1e-5)
    assert gap["one_configuration"] == pytest.approx(
        expected(free.config())[0] - np.mean(optimum_loss))
    assert sum(gap[k] for k in ("learning_rate_cap", "shape_under_cap", "one_configuration",
                                "median_vs_mean")) == pytest.approx(gap["total"])
    # without caps nothing is re-chosen and the cap terms are zero
    plain = free.gap_to_optimum
    assert not plain["capped"] and "uncapped" not in plain
    assert plain["learning_rate_cap"] == 0.0 and plain["shape_under_cap"] == 0.0
    assert plain["one_configuration"] == pytest.approx(gap["one_configuration"])
    # generic rows: no learning rate, no decomposition
    generic = recommend(jax.random.PRNGKey(0), FakePosterior(), 1e19, generic=True)
    assert generic.gap_to_optimum == {}

"""The batch size and learning rate of a recommendation: expected-loss choice, caps, default."""

import jax
import numpy as np
import pytest

from bayes_scaling.errors import InvalidConfigError
from bayes_scaling.features import features_from_configs
from bayes_scaling.learning_rate_choice import (
    LEARNING_RATE_CLIP,
    default_learning_rate,
    learning_rate_range,
)
from bayes_scaling.recommend import recommend
from bayes_scaling.recommend_caveats import outside_explored
from bayes_scaling.space import RunConfig
from fake_posterior import FakePosterior


def test_recommend_without_lr_or_bs_terms_uses_defaults():
    rec = recommend(jax.random.PRNGKey(1), FakePosterior(), 1e19)
    assert rec.batch_size == 128
    assert rec.learning_rate_source == "default"
    assert rec.learning_rate == pytest.approx(default_learning_rate(rec.non_embedding_params))
    assert 1e-4 < rec.learning_rate < 6e-4


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
    return features_from_configs([RunConfig(d_model=256, num_layers=4, num_heads=4,
                                            batch_size=128, learning_rate=lr,
                                            train_flops=int(1e16)) for lr in learning_rates])


def test_learning_rate_min_caps_the_choice_from_below_and_says_how_far_lr_star_is():
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


def test_default_learning_rate_is_the_gpt3_table_interpolated_in_log_log():
    assert default_learning_rate(1.3e9) == pytest.approx(2.0e-4)
    # halfway in log N between 125M (6e-4) and 350M (3e-4): the geometric mean of the two
    assert default_learning_rate(np.sqrt(125e6 * 350e6)) == pytest.approx(np.sqrt(6e-4 * 3e-4))
    assert default_learning_rate(1e6) == pytest.approx(6.0e-4)  # clamped at the table's ends
    assert default_learning_rate(1e12) == pytest.approx(0.6e-4)


def test_learning_rate_range_narrows_the_clip_and_rejects_bad_caps():
    assert learning_rate_range(None, None) == LEARNING_RATE_CLIP
    assert learning_rate_range(1e-4, 1e-3) == (1e-4, 1e-3)
    assert learning_rate_range(1e-6, 1.0) == LEARNING_RATE_CLIP  # caps wider than the clip
    for low, high, match in ((None, 1e-6, "learning_rate_max"), (0.0, None, "learning_rate_min"),
                             (2e-2, None, "learning_rate_min"),
                             (2e-3, 1e-3, "learning_rate_min: expected at most")):
        with pytest.raises(InvalidConfigError, match=match):
            learning_rate_range(low, high)

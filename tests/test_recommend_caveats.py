"""The report's caveats on a recommendation: its gap to the optimum, values outside the runs."""

import dataclasses

import jax
import numpy as np
import pytest

from bayes_scaling.features import features_from_configs
from bayes_scaling.recommend import recommend
from bayes_scaling.recommend_caveats import outside_explored
from bayes_scaling.space import RunConfig
from fake_posterior import FakePosterior


def test_outside_explored_flags_how_far_each_value_is():
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

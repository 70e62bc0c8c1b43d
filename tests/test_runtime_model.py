"""The runtime model: a prior from the published run, a learned throughput law, safe margins."""

from __future__ import annotations

import numpy as np
import pytest

from api2026_configs import notebook_body
from bayes_scaling.api2026.schemas import TrainingConfig
from bayes_scaling.candidates2026 import generate_training_candidates
from bayes_scaling.runtime_model import RuntimeModel
from jobs_standin import true_seconds


def test_prior_matches_the_published_run():
    notebook = TrainingConfig.model_validate(notebook_body())
    seconds = RuntimeModel().seconds([notebook])[0]
    assert 10.18 / 1.3 < seconds < 10.18 * 1.3


def draw(seed, n):
    rng = np.random.default_rng(seed)
    return generate_training_candidates(rng, n, RuntimeModel(), max_reservation=43200.0)


def test_learns_the_throughput_and_reserves_enough_but_not_much_more():
    train, held_out = draw(0, 40)[:20], draw(1, 300)
    seconds = [true_seconds(c) for c in train]
    model = RuntimeModel().fit(train, seconds)
    truth = np.array([true_seconds(c) for c in held_out])
    predicted = model.seconds(held_out)
    assert np.median(np.abs(np.log(predicted / truth))) < 0.05
    reserve = model.reservation(held_out)
    assert np.all(reserve >= truth)
    assert np.median(reserve / truth) < 1.5
    few = RuntimeModel().fit(train[:4], seconds[:4])  # too few: the prior's margins
    assert np.all(few.reservation(held_out) >= truth)
    prior_reserve = RuntimeModel().reservation(held_out)
    assert np.median(prior_reserve / truth) > np.median(reserve / truth)


def test_tokens_for_seconds_inverts_the_prediction():
    model = RuntimeModel()
    base = TrainingConfig.model_validate(notebook_body())
    tokens = model.tokens_for_seconds(base, 500.0)
    unit = 512 * 128 * 16
    sized = TrainingConfig.model_validate(
        notebook_body(total_train_tokens=int(tokens // unit) * unit)
    )
    assert model.seconds([sized])[0] == pytest.approx(500.0, rel=0.02)

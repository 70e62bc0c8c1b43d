import json

import numpy as np
import pytest

from bayes_scaling.errors import InvalidTruthError
from bayes_scaling.simulator import random_truths
from bayes_scaling.simulator.evaluation import true_optimum
from bayes_scaling.simulator.random_truths import (
    RANGES,
    check_truth,
    draw_family_member,
    draw_truths,
    family_truth,
)
from bayes_scaling.simulator.truth import Truth, load_truth, mean_loss

KEYS = [k for k in Truth().to_dict() if k != "L_init"]


@pytest.fixture(scope="module")
def family():
    return draw_truths(3, 12)


def test_every_key_varied_across_draws(family):
    for key in KEYS:
        values = {d[key] for d in family}
        assert len(values) == len(family), key
    # L_init is the one key kept (the untrained loss of the vocabulary)
    assert {d["L_init"] for d in family} == {Truth().L_init}


def test_draws_load_through_the_truth_loader(family, tmp_path):
    for i, values in enumerate(family):
        path = tmp_path / f"truth{i}.json"
        path.write_text(json.dumps(values))
        truth = load_truth(path)
        assert truth.to_dict() == {**values, "seed": int(values["seed"])}


def test_draws_stay_inside_the_documented_ranges(family):
    for values in family:
        for key, (_, low, high) in RANGES.items():
            if key.endswith("_term"):
                continue
            assert low <= values[key] <= high, key
        # the amplitudes follow from term sizes at the reference scales
        n_term = values["A"] * random_truths.N_TERM_REF ** -values["alpha"]
        d_term = values["B"] * random_truths.D_TERM_REF ** -values["beta"]
        k_term = values["K"] * random_truths.K_TERM_REF ** -values["gamma"]
        for name, term in (("n_term", n_term), ("d_term", d_term), ("k_term", k_term)):
            _, low, high = RANGES[name]
            assert low * (1 - 1e-9) <= term <= high * (1 + 1e-9)
    # the brief's learning-rate ranges: both signs of b_eta appear in a dozen draws
    assert min(v["b_eta"] for v in family) < 0 < max(v["b_eta"] for v in family)
    assert all(0.3 <= v["a_eta"] <= 0.7 for v in family)


def test_losses_finite_and_below_untrained_on_api_grid(family):
    d, layers, heads, bs, lr, flops = random_truths._api_grid()
    assert len(d) > 10_000
    for values in family:
        truth = Truth.from_mapping(values)
        loss = np.asarray(mean_loss(truth, d, layers, heads, bs, lr, flops))
        assert np.all(np.isfinite(loss))
        assert np.all((loss > 0) & (loss <= truth.L_init + 1e-9))
        assert check_truth(truth) == []


def test_reproducible_from_the_seed_and_independent_of_n():
    assert draw_truths(5, 3) == draw_truths(5, 3)
    assert draw_truths(5, 4)[:3] == draw_truths(5, 3)
    assert family_truth(5, 2) == draw_truths(5, 3)[2]
    assert draw_truths(5, 2) != draw_truths(6, 2)


def test_check_rejects_implausible_truths():
    assert check_truth(Truth()) == []
    problems = check_truth(Truth(E=4.0))
    assert any("1e19 optimum loss" in p for p in problems)
    problems = check_truth(Truth(A=1e-6, B=1e-6, K=1e-6))
    assert any("does not fall with compute" in p or "nats below" in p for p in problems)


def test_rejected_draws_are_redrawn_and_reported(monkeypatch):
    monkeypatch.setattr(random_truths, "TARGET_LOSS_RANGE", (3.0, 3.8))
    member = draw_family_member(0, 0)
    assert check_truth(member.truth()) == []
    kept = [draw_family_member(0, i) for i in range(6)]
    assert any(m.rejections for m in kept)
    assert any("1e19 optimum loss" in r for m in kept for r in m.rejections)
    assert all(true_optimum(m.truth(), 1e19).loss >= 3.0 for m in kept)


def test_bad_arguments_raise_one_line_errors():
    with pytest.raises(InvalidTruthError, match="expected an integer >= 0, got -1"):
        draw_truths(-1, 2)
    with pytest.raises(InvalidTruthError, match="n: expected"):
        draw_truths(0, 1.5)

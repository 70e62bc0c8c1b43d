"""The 2026 target recommendation: expected loss at each candidate's own 48-hour tokens."""

from __future__ import annotations

import math

import pytest

from bayes_scaling.candidates2026 import law_features, training_config
from bayes_scaling.errors import InvalidConfigError
from bayes_scaling.jobs_loop import residual_choices
from bayes_scaling.memory2026 import B200_MEMORY_BYTES, config_memory_bytes
from bayes_scaling.oracle import ExperimentOutcome
from bayes_scaling.params2026 import count_params_2026
from bayes_scaling.recommend2026 import choose_target_config, target_score
from bayes_scaling.runtime_model import RuntimeModel, RuntimePrior
from bayes_scaling.simulator.truth2026 import Truth2026, simulate_run
from fake_posterior import FakePosterior

HOURS = 48.0
SHORT = 2.0  # a shorter target: a faster test
BAND = (60.0, 120.0)  # a narrower aspect-ratio band than the default: fewer shapes, a faster test


@pytest.fixture(scope="module")
def posterior():
    return FakePosterior(lr0=2e-3, n_draws=100)


def _runtime(slope: float = 0.35) -> RuntimeModel:
    """The runtime prior, its throughput rising as ``N_mm^slope`` (0: flat in FLOP/s)."""
    return RuntimeModel(RuntimePrior(mean=(math.log(2.5e14), slope, 0.0, 0.0)))


def _fitted_runtime() -> RuntimeModel:
    """The runtime model fitted on 12 runs timed by the 2026 simulator's truth."""
    truth, configs = Truth2026(), []
    for i in range(12):
        d = 128 * (1 + i % 6)
        configs.append(training_config(
            hidden_size=d, num_layers=2 + i % 5, head_dim=64, intermediate_size=3 * d,
            peak_learning_rate=1e-3, warmup_frac=0.05, batch_size=(32, 64, 128, 256)[i % 4],
            tokens=2e7 * (1 + i), max_runtime_seconds=43200.0))
    return RuntimeModel().fit(configs, [simulate_run(truth, c).train_seconds for c in configs])


def _variant(cfg, *, d, layers, runtime):
    """``cfg``'s knobs on another shape, at the tokens filling the hours (the same margin)."""
    arch = cfg.architecture_config
    draft = dict(hidden_size=d, num_layers=layers, head_dim=arch.head_dim,
                 intermediate_size=int(round(arch.intermediate_size / arch.hidden_size * d / 64))
                 * 64, peak_learning_rate=cfg.optimizer_config.lr_scheduler.peak_value,
                 warmup_frac=cfg.optimizer_config.lr_scheduler.warmup_frac,
                 batch_size=cfg.train_batch_size, n_evals=16)
    probe = training_config(**draft, tokens=1.0, max_runtime_seconds=1.0)
    _, sd = runtime.log_seconds([probe])
    tokens = runtime.tokens_for_seconds(probe, SHORT * 3600.0 * math.exp(-float(sd[0])))
    return training_config(**draft, tokens=tokens, max_runtime_seconds=43200.0)


def test_the_choice_fills_the_hours_and_beats_its_neighbours_at_their_own_tokens(posterior):
    runtime = _fitted_runtime()
    choice = choose_target_config(posterior, runtime, hours=SHORT, aspect_ratio_band=BAND)
    cfg = choice.training_config
    arch = cfg.architecture_config
    assert cfg.n_evals == 16 and cfg.max_runtime_seconds == 43200.0
    assert arch.head_dim == 64 and arch.hidden_size % 128 == 0
    # tokens: what fills 48 hours at its own predicted throughput, one sd on the safe side
    _, sd = runtime.log_seconds([cfg])
    margin = SHORT * 3600.0 * math.exp(-float(sd[0]))
    assert choice.predicted_seconds == pytest.approx(margin, rel=0.01)
    unit = 512 * cfg.train_batch_size * 16
    longer = cfg.model_copy(update={"total_train_tokens": cfg.total_train_tokens + 2 * unit})
    assert runtime.seconds([longer])[0] > choice.predicted_seconds
    # the exact (PyTorch-counted) features of its neighbours, each at its own tokens, score no
    # better: the choice is the minimiser of the score at each shape's own 48-hour tokens
    own = target_score(posterior, law_features([cfg]))[0]
    assert own == pytest.approx(choice.target_score, abs=1e-6)
    d, layers = arch.hidden_size, arch.num_hidden_layers
    checked = 0
    for nd, nl in ((d - 128, layers), (d + 128, layers), (d, layers - 1), (d, layers + 1)):
        other = _variant(cfg, d=nd, layers=nl, runtime=runtime)
        if config_memory_bytes(other) <= B200_MEMORY_BYTES and BAND[0] <= nd / nl <= BAND[1]:
            assert target_score(posterior, law_features([other]))[0] >= own - 1e-6
            checked += 1
    assert checked >= 2


def test_a_throughput_that_falls_for_small_models_moves_the_choice_to_larger_models(posterior):
    sizes = {}
    for slope in (0.0, 0.6):
        cfg = choose_target_config(posterior, _runtime(slope), hours=SHORT,
                                   aspect_ratio_band=BAND).training_config
        sizes[slope] = count_params_2026(cfg.architecture_config).non_embedding
    assert sizes[0.6] > 1.2 * sizes[0.0]


def test_the_memory_guard_excludes_what_does_not_fit_and_says_so(posterior):
    runtime = _runtime()
    tight = choose_target_config(posterior, runtime, hours=HOURS, memory_capacity=20e9,
                                 aspect_ratio_band=BAND)
    roomy = choose_target_config(posterior, runtime, hours=HOURS, memory_capacity=40e9,
                                 aspect_ratio_band=BAND)
    assert tight.memory_bytes <= 20e9 < roomy.memory_bytes <= 40e9
    assert tight.n_out_of_memory > 0
    removed = tight.excluded_best
    assert removed is not None and removed["memory_bytes"] > 20e9
    assert removed["target_score"] < tight.target_score
    assert roomy.target_score < tight.target_score
    record = tight.as_dict()  # report.json's target_choice: named for the score it holds
    assert record["target_score"] == tight.target_score and "expected_loss" not in record


def test_head_dimension_32_is_refused(posterior):
    with pytest.raises(InvalidConfigError, match="head_dim"):
        choose_target_config(posterior, _runtime(), hours=HOURS, head_dim=32)


def _outcome(head_dim: int, loss: float, i: int) -> ExperimentOutcome:
    cfg = training_config(hidden_size=256, num_layers=2 + i, head_dim=head_dim,
                          intermediate_size=704, peak_learning_rate=1e-3, warmup_frac=0.05,
                          batch_size=64, tokens=2e7, max_runtime_seconds=60.0)
    return ExperimentOutcome(key=cfg.unique_id, config=cfg, state="completed", final_loss=loss,
                             curve=(), loss_kind="val", failure=None, charged=10.0,
                             runtime_seconds=10.0)


def test_residual_choice_never_recommends_head_dimension_32(posterior):
    # runs of head dimension 32 fit far better than their law, those of 64 and 128 worse
    done = [_outcome(32, 3.0, i) for i in range(4)]
    done += [_outcome(hd, 6.0 + 0.01 * i, i) for hd in (64, 128) for i in range(4)]
    choices = residual_choices(posterior, done)
    assert choices["groups"]["head_dim"]["32"]["runs"] == 4  # seen and reported
    assert choices["head_dim"] in (64, 128)
    done = [_outcome(32, 3.0, i) for i in range(4)] + [_outcome(128, 6.0, i) for i in range(4)]
    done += [_outcome(64, 6.2, i) for i in range(4)]
    assert residual_choices(posterior, done)["head_dim"] == 128


def test_target_score_is_the_geometric_posterior_mean_and_ignores_the_discrepancy():
    import arviz as az
    import jax
    import numpy as np
    from numpyro.infer import Predictive

    from bayes_scaling.diagnostics import diagnose
    from bayes_scaling.model import (
        CORE_LATENT,
        DataRange,
        PriorConfig,
        make_model_data,
        scaling_model,
    )
    from bayes_scaling.posterior import DISCREPANCY_GROUP, Posterior

    runs = [training_config(hidden_size=d, num_layers=4, head_dim=64, intermediate_size=3 * d,
                            peak_learning_rate=1e-3, warmup_frac=0.05, batch_size=64,
                            tokens=t, max_runtime_seconds=100.0)
            for d, t in ((256, 2e8), (512, 1e9))]
    features = law_features(runs)
    prior = PriorConfig()
    draws = Predictive(scaling_model, num_samples=32)(
        jax.random.key(4), make_model_data(features), prior=prior, nuisance=True)
    sites = {k: np.asarray(v).reshape(1, 32) for k, v in draws.items()
             if k not in ("log_loss", "loss")}

    def posterior(tau):
        idata = az.from_dict(posterior=sites, **{DISCREPANCY_GROUP: {
            "tau_x": np.full((1, 32), tau), "z_x": np.ones((1, 32))}})
        return Posterior(idata=idata, diagnostics=diagnose(idata, CORE_LATENT, 0), prior=prior,
                         nuisance=True, data_range=DataRange.from_features(features.take([0])),
                         family=features.family)

    calm, wild = posterior(0.0), posterior(0.3)
    mean = calm.predict_mean(features)
    np.testing.assert_allclose(target_score(calm, features),
                               np.exp(np.mean(np.log(mean), axis=0)), rtol=1e-12)
    np.testing.assert_allclose(target_score(wild, features), target_score(calm, features),
                               rtol=1e-12)
    # the expected loss it replaced grows with the discrepancy beyond the data (row 1 only)
    assert wild.expected_loss(features)[1] > calm.expected_loss(features)[1] * 1.01
    assert wild.expected_loss(features)[0] == pytest.approx(calm.expected_loss(features)[0])

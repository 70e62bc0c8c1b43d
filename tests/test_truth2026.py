"""The 2026 truth family: calibration anchors, curve shape, effects, runtime, noise, files."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from api2026_configs import notebook_body, with_path
from bayes_scaling.api2026.schemas import TrainingConfig
from bayes_scaling.errors import InvalidTruthError
from bayes_scaling.simulator.server2026 import plan_finish
from bayes_scaling.simulator.truth2026 import (
    DEFAULT_TRUTH_FILE,
    Truth2026,
    _shape_factor,
    chunk_seconds,
    load_truth_2026,
    mean_curve,
    observed_curve,
    optimal_learning_rate_2026,
    schedule,
    simulate_run,
)

TRUTH = Truth2026()


def _config(**changes):
    body = notebook_body(max_runtime_seconds=43200)
    for path, value in changes.items():
        body = with_path(body, tuple(path.split(".")), value)
    return TrainingConfig.model_validate(body)


def test_calibrated_to_the_specs_notebook_run():
    config = TrainingConfig.model_validate(notebook_body())
    curve = observed_curve(TRUTH, config)
    assert abs(curve[0] - 9.625) < 0.03 and abs(curve[-1] - 7.189) < 0.03
    assert abs(chunk_seconds(TRUTH, config) * 16 - 10.18) < 0.01


def test_schedule_is_optax_warmup_cosine():
    config = _config()  # 128 steps, warmup floor(6.4) = 6 steps, cosine to 3e-5
    steps = np.arange(129) / 128
    lr = schedule(config, steps)
    assert lr[0] == 0.0 and lr[6] == pytest.approx(3e-4) and lr[-1] == pytest.approx(3e-5)
    assert lr[3] == pytest.approx(1.5e-4)
    assert np.all(np.diff(lr[6:]) <= 1e-18)


def _sample_configs(n=40):
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        heads = int(rng.integers(2, 17))
        hd = int(rng.choice([32, 64, 128]))
        d = heads * hd
        batch = int(rng.choice([16, 64, 128, 256, 512]))
        n_evals = int(rng.choice([1, 4, 16, 32]))
        unit = 512 * batch * n_evals
        out.append(_config(**{
            "architecture_config.num_attention_heads": heads,
            "architecture_config.num_key_value_heads": heads,
            "architecture_config.head_dim": hd,
            "architecture_config.hidden_size": d,
            "architecture_config.intermediate_size": int(d * rng.uniform(1, 5)),
            "architecture_config.num_hidden_layers": int(rng.integers(1, 33)),
            "optimizer_config.lr_scheduler.peak_value": float(10 ** rng.uniform(-4.5, -1)),
            "optimizer_config.lr_scheduler.warmup_frac": float(rng.uniform(0, 0.3)),
            "optimizer_config.lr_scheduler.final_lr_frac": float(rng.uniform(0, 1)),
            "train_batch_size": batch,
            "n_evals": n_evals,
            "total_train_tokens": unit * int(10 ** rng.uniform(0, 3)),
        }))
    return out


def test_curves_are_monotone_in_tokens_and_between_the_floor_and_init():
    for config in _sample_configs():
        curve = mean_curve(TRUTH, config)
        assert curve.shape == (config.n_evals,)
        assert np.all(np.diff(curve) <= 0)
        assert np.all((curve > TRUTH.E) & (curve <= TRUTH.L_init))


def test_the_cosine_cool_down_is_visible():
    long = {"total_train_tokens": 8388608 * 64, "train_batch_size": 256}
    peak = optimal_learning_rate_2026(TRUTH, _config(**long))
    long["optimizer_config.lr_scheduler.peak_value"] = peak
    cosine = mean_curve(TRUTH, _config(**long))
    constant = mean_curve(
        TRUTH, _config(**long, **{"optimizer_config.lr_scheduler.final_lr_frac": 1.0})
    )
    assert constant[-1] - cosine[-1] > 0.1
    # While the rate is high the two curves are close; the gap opens as the cosine anneals.
    assert constant[4] - cosine[4] < 0.5 * (constant[-1] - cosine[-1])


def test_learning_rate_batch_optimizer_warmup_and_shape_effects():
    tokens = 8388608 * 32
    def final(**kw):
        return mean_curve(TRUTH, _config(total_train_tokens=tokens, **kw))[-1]
    lr_path = "optimizer_config.lr_scheduler.peak_value"
    losses = {lr: final(**{lr_path: lr}) for lr in (1e-4, 1e-3, 3e-3, 1e-2, 1e-1)}
    assert min(losses, key=losses.get) in (1e-3, 3e-3)
    assert losses[1e-1] - min(losses.values()) > 1.0
    sgd = _config(total_train_tokens=tokens).model_dump()
    best_sgd = min(
        mean_curve(TRUTH, TrainingConfig.model_validate(
            {**sgd, "optimizer_config": {"lr_scheduler": {"peak_value": lr}}}))[-1]
        for lr in (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
    )
    assert best_sgd - min(losses.values()) > 0.3
    no_warmup = final(**{lr_path: 3e-3, "optimizer_config.lr_scheduler.warmup_frac": 0.0})
    assert no_warmup > final(**{lr_path: 3e-3})
    # Shape: the multiplier is 1 at aspect ratio AR0, head dim 64, f = 8d/3, and grows away.
    balanced = _config(**{"architecture_config.hidden_size": 768,
                          "architecture_config.num_attention_heads": 12,
                          "architecture_config.num_key_value_heads": 12,
                          "architecture_config.intermediate_size": 2048,
                          "architecture_config.num_hidden_layers": 8})
    expected = 1.0 + TRUTH.c_deep * math.log(0.96) ** 2
    assert _shape_factor(TRUTH, balanced) == pytest.approx(expected)
    deep = _config(**{"architecture_config.num_hidden_layers": 64})
    assert _shape_factor(TRUTH, deep) > _shape_factor(TRUTH, balanced) + 0.01


def test_optimal_learning_rate_falls_with_size():
    small = optimal_learning_rate_2026(TRUTH, _config())
    big = optimal_learning_rate_2026(TRUTH, _config(**{
        "architecture_config.hidden_size": 2048, "architecture_config.num_attention_heads": 32,
        "architecture_config.num_key_value_heads": 32,
        "architecture_config.intermediate_size": 5504}))
    assert big < small / 2


def test_runtime_throughput_evals_and_dtype():
    base = _config()
    t = chunk_seconds(TRUTH, base) * base.n_evals
    more_evals = _config(n_evals=64)
    assert chunk_seconds(TRUTH, more_evals) * 64 > t + 10
    assert chunk_seconds(TRUTH, _config(val_batch_size=1)) > chunk_seconds(TRUTH, base) + 1
    f32 = _config(**{"architecture_config.dtype": "float32"})
    assert chunk_seconds(TRUTH, f32) > 1.5 * chunk_seconds(TRUTH, base)
    # FLOP/s achieved rises with width: a wide model is cheaper per FLOP than a narrow one.
    from bayes_scaling.params2026 import flops_per_token
    def flops_per_second(cfg):
        train, val = flops_per_token(cfg.architecture_config)
        work = train * cfg.total_train_tokens + val * 2**18 * cfg.n_evals
        return work / (chunk_seconds(TRUTH, cfg) * cfg.n_evals)
    wide = _config(**{"architecture_config.hidden_size": 2048,
                      "architecture_config.num_attention_heads": 32,
                      "architecture_config.num_key_value_heads": 32,
                      "architecture_config.intermediate_size": 5504})
    assert flops_per_second(wide) > 2 * flops_per_second(base)


def test_out_of_memory_for_huge_batches_and_models():
    huge_batch = _config(train_batch_size=4096, total_train_tokens=512 * 4096 * 16)
    outcome = simulate_run(TRUTH, huge_batch)
    assert outcome.oom and outcome.failure.startswith("XlaRuntimeError: RESOURCE_EXHAUSTED")
    plan = plan_finish(outcome, 100.0)
    assert plan.status == "failed" and plan.reason["reason"] == "unexpected"
    assert plan.used_runtime_seconds == 0.0
    huge_model = _config(**{
        "architecture_config.hidden_size": 16384, "architecture_config.num_attention_heads": 128,
        "architecture_config.num_key_value_heads": 128, "architecture_config.head_dim": 128,
        "architecture_config.intermediate_size": 65536,
        "architecture_config.num_hidden_layers": 64})
    assert simulate_run(TRUTH, huge_model).oom
    assert not simulate_run(TRUTH, _config()).oom


def test_noise_is_fixed_per_configuration_and_seed():
    config = _config()
    again = TrainingConfig.model_validate(json.loads(config.model_dump_json()))
    assert np.array_equal(observed_curve(TRUTH, config), observed_curve(TRUTH, again))
    seeds = {float(observed_curve(TRUTH, _config(model_seed=s))[-1]) for s in range(8)}
    assert len(seeds) > 3
    other_world = observed_curve(replace(TRUTH, seed=1), config)
    assert not np.array_equal(other_world, observed_curve(TRUTH, config))


def test_bfloat16_rounding_only_for_bf16_runs():
    bf16 = observed_curve(TRUTH, _config())
    assert all(float(v * 512).is_integer() for v in bf16)
    f32 = observed_curve(TRUTH, _config(**{"architecture_config.dtype": "float32"}))
    assert sum(float(v * 512).is_integer() for v in f32) < 4


def test_truth_files(tmp_path):
    assert load_truth_2026(DEFAULT_TRUTH_FILE) == Truth2026() == load_truth_2026(None)
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"E": 2.0, "bogus": 1}))
    with pytest.raises(InvalidTruthError, match="unknown key"):
        load_truth_2026(path)
    path.write_text(json.dumps({"E": "two"}))
    with pytest.raises(InvalidTruthError, match="must be a number"):
        load_truth_2026(path)
    path.write_text(json.dumps({"E": 2.0, "seed": 3}))
    assert load_truth_2026(path).E == 2.0 and load_truth_2026(path).seed == 3
    assert math.isclose(Truth2026.from_mapping({}).K, Truth2026().K)


"""The memory rule of a 2026 run: one formula, shared by the simulator and the recommendation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bayes_scaling.candidates2026 import training_config
from bayes_scaling.memory2026 import (
    B200_MEMORY_BYTES,
    config_memory_bytes,
    fits_memory,
    training_memory_bytes,
)
from bayes_scaling.params2026 import count_params_2026
from bayes_scaling.simulator.truth2026 import Truth2026, memory_bytes, simulate_run


def _cfg(d=2432, layers=32, f=6080, batch=128, head_dim=32, tokens=1e9):
    return training_config(hidden_size=d, num_layers=layers, head_dim=head_dim,
                           intermediate_size=f, peak_learning_rate=1e-3, warmup_frac=0.05,
                           batch_size=batch, tokens=tokens, max_runtime_seconds=100.0)


def test_bytes_are_weights_gradients_adamw_activations_and_logits():
    cfg = _cfg()
    total = count_params_2026(cfg.architecture_config).total  # the PyTorch model's count
    tokens = 512 * 128
    by_hand = (total * 2 * 4                                  # bf16 weights, grads, 2 moments
               + tokens * 32 * (24 * 2432 + 4 * 6080) * 2 / 2  # activations at 2 bytes
               + tokens * 32000 * 8)                          # float32 logits and gradient
    assert config_memory_bytes(cfg) == pytest.approx(by_hand, rel=1e-12)
    # perturbed truth 1's old recommendation (d 2432, 32 layers) does not fit a B200
    assert by_hand > B200_MEMORY_BYTES and not fits_memory(cfg)
    assert fits_memory(_cfg(d=1664, layers=15, f=4416, batch=256, head_dim=64))


def test_the_formula_broadcasts_over_shapes():
    d = np.array([768.0, 1536.0])
    out = training_memory_bytes(total_params=np.array([1e8, 5e8]), hidden_size=d,
                                num_layers=np.array([12, 16]), intermediate_size=2 * d,
                                batch_size=np.array([128, 1024]))
    assert out.shape == (2,)
    assert out[1] == pytest.approx(training_memory_bytes(
        total_params=5e8, hidden_size=1536.0, num_layers=16, intermediate_size=3072.0,
        batch_size=1024))


def test_the_simulator_uses_the_same_rule_and_fails_exactly_past_it():
    truth = Truth2026()
    big = _cfg(d=768, layers=12, f=2048, batch=1024, head_dim=64)  # the docs' example
    small = _cfg(d=768, layers=12, f=2048, batch=128, head_dim=64)
    for cfg in (big, small, _cfg()):
        assert memory_bytes(truth, cfg) == config_memory_bytes(cfg)
        assert simulate_run(truth, cfg).oom == (not fits_memory(cfg))
    assert simulate_run(truth, big).oom and not simulate_run(truth, small).oom
    # a truth with other activation constants: the simulator passes them to the same rule
    other = dataclasses.replace(truth, act_bytes_d=48.0)
    assert memory_bytes(other, small) == config_memory_bytes(small, act_bytes_d=48.0)
    assert memory_bytes(other, small) > memory_bytes(truth, small)

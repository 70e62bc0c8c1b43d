"""Whether a 2026 training run fits the memory of one B200: the one home of the memory rule.

The course's spec (``API_2026.md`` §1.3, §2.4, §4) says only that configurations too big for the
GPU fail at run time (out of memory: ``failed/unexpected``, charged 1 s) and that "memory is set
by batch x 512 x vocab logits". It gives no formula, so the simulated server defines one
(``docs/api2026_simulator.md``, "Memory"), and the recommendation guards against the same rule
(a recommended TrainingConfig the simulated B200 cannot hold would fail on the server):

    bytes = N_total w (2 + states)                                  # weights, gradients, optimizer
          + T L (act_bytes_d d + act_bytes_f f) w / 2               # activations kept for backward
          + T V 8                                                   # float32 logits and gradient

with ``N_total`` all parameters (token table and untied head included), ``w`` 2 bytes (bfloat16)
or 4 (float32), ``states`` 2 for AdamW (two moments) and 0 for SGD, ``T = 512 B`` the tokens of
one optimizer step, ``L``, ``d``, ``f`` and ``V`` the depth, width, intermediate size and
vocabulary. A run fits when ``bytes <= capacity``. The simulator's truth may set other
``act_bytes_d``, ``act_bytes_f`` and capacity (truth keys ``act_bytes_d``, ``act_bytes_f``,
``memory_bytes``); their defaults are the constants below.
"""

from __future__ import annotations

import numpy as np

from bayes_scaling.api2026.schemas import SEQ_LEN, AdamWConfig, TrainingConfig
from bayes_scaling.params2026 import VOCAB_SIZE, total_params_2026

__all__ = [
    "ACT_BYTES_D",
    "ACT_BYTES_F",
    "B200_MEMORY_BYTES",
    "config_memory_bytes",
    "fits_memory",
    "training_memory_bytes",
]

#: Bytes of one simulated B200 (the usable part of its 192 GB).
B200_MEMORY_BYTES = 180e9
#: Activation bytes kept per token and layer, per unit of width and of intermediate size, at
#: 2-byte precision (scaled by ``w / 2``).
ACT_BYTES_D = 24.0
ACT_BYTES_F = 4.0


def training_memory_bytes(
    *,
    total_params,
    hidden_size,
    num_layers,
    intermediate_size,
    batch_size,
    vocab_size=VOCAB_SIZE,
    dtype_bytes=2.0,
    optimizer_states=2.0,
    act_bytes_d: float = ACT_BYTES_D,
    act_bytes_f: float = ACT_BYTES_F,
):
    """Bytes one training step needs (module docstring); broadcasts over arrays, float64."""
    tokens = SEQ_LEN * np.asarray(batch_size, np.float64)
    w = np.asarray(dtype_bytes, np.float64)
    weights = np.asarray(total_params, np.float64) * w * (2.0 + np.asarray(optimizer_states))
    activations = (
        tokens
        * np.asarray(num_layers, np.float64)
        * (act_bytes_d * np.asarray(hidden_size, np.float64)
           + act_bytes_f * np.asarray(intermediate_size, np.float64))
        * w
        / 2.0
    )
    logits = tokens * np.asarray(vocab_size, np.float64) * 4.0 * 2.0
    return weights + activations + logits


def config_memory_bytes(
    config: TrainingConfig, *, act_bytes_d: float = ACT_BYTES_D, act_bytes_f: float = ACT_BYTES_F
) -> float:
    """Bytes a training step of ``config`` needs (module docstring)."""
    arch = config.architecture_config
    total = total_params_2026(
        arch.hidden_size, arch.num_hidden_layers, arch.intermediate_size, arch.head_dim,
        vocab_size=arch.vocab_size, tie_word_embeddings=arch.tie_word_embeddings,
        attention_bias=arch.attention_bias,
    )
    return float(training_memory_bytes(
        total_params=total, hidden_size=arch.hidden_size, num_layers=arch.num_hidden_layers,
        intermediate_size=arch.intermediate_size, batch_size=config.train_batch_size,
        vocab_size=arch.vocab_size, dtype_bytes=2.0 if arch.dtype == "bfloat16" else 4.0,
        optimizer_states=2.0 if isinstance(config.optimizer_config, AdamWConfig) else 0.0,
        act_bytes_d=act_bytes_d, act_bytes_f=act_bytes_f,
    ))


def fits_memory(config: TrainingConfig, *, capacity: float = B200_MEMORY_BYTES) -> bool:
    """Whether ``config``'s training step fits ``capacity`` bytes (default one B200)."""
    return config_memory_bytes(config) <= capacity

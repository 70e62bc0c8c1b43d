"""The 2026 simulator's truth family: a learning curve and a runtime for every TrainingConfig.

``docs/api2026_simulator.md`` documents the family, its constants and their calibration. In short,
for a run of ``S`` optimizer steps of ``B`` sequences (``T = 512 B`` tokens per step) on a model
with ``N`` non-embedding parameters (:mod:`bayes_scaling.params2026`), the mean validation loss
after ``s`` steps is

    raw(s)  = [E + A (N + lam V d k)^-alpha + Bd D(s)^-beta + K S1(s)^-gamma + noise(s)] * shape
              + penalties
    mean(s) = L_init - softplus(3 (L_init - raw(s))) / 3,   made non-increasing in s

with ``D(s) = s T`` tokens seen, ``S1(s) = sum_{i<s} min(eta_i / eta*, 1)^p`` the learning-rate
area in units of the optimal rate (times ``sgd_efficiency`` for SGD), and
``noise(s) = c_noise (ema_s / eta*) sqrt(128 / B)`` a noise floor proportional to the
exponentially averaged learning rate ``ema_s``. The last term is the annealing term of the
learning-rate-annealing scaling law (Tissue et al. 2024, "Scaling Law with Learning Rate
Annealing", arXiv:2408.11029): their ``L = L0 + A S1^-alpha - C S2`` with ``S2`` the
momentum-lagged sum of learning-rate decreases; here the same lagged decrease lowers a bounded
noise floor, so the cosine schedule's cool-down is visible at the end of every curve and a
constant schedule shows none. The schedule ``eta_i`` is optax's warmup-cosine exactly as the
course's server builds it. Curves are evaluated in continuous normalised time on a grid.

Runtime follows a throughput model whose utilisation falls for narrow models and small batches
(plus fixed costs per step, per chunk and per validation batch), so ``n_evals`` and
``val_batch_size`` cost seconds. A memory model decides out-of-memory failures. Noise is fixed
by the configuration and its ``model_seed``; ``bfloat16`` runs round each validation batch's mean
to bf16 before averaging, as the course's loop does. Pure NumPy, float64.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bayes_scaling.api2026.schemas import (
    N_VAL_TOKENS,
    SEQ_LEN,
    AdamWConfig,
    TrainingConfig,
    config_unique_id,
)
from bayes_scaling.errors import InvalidTruthError
from bayes_scaling.memory2026 import (
    ACT_BYTES_D,
    ACT_BYTES_F,
    B200_MEMORY_BYTES,
    config_memory_bytes,
)
from bayes_scaling.params2026 import (
    eval_flops_per_token_2026,
    non_embedding_params_2026,
    train_flops_per_token_2026,
)
from bayes_scaling.simulator.truth import checked_numbers

__all__ = [
    "DEFAULT_TRUTH_FILE",
    "RunOutcome",
    "Truth2026",
    "load_truth_2026",
    "mean_curve",
    "optimal_learning_rate_2026",
    "schedule",
    "simulate_run",
]

DEFAULT_TRUTH_FILE = Path(__file__).resolve().parents[3] / "data" / "truth2026_default.json"
"""The shipped default truth (its values equal the dataclass defaults)."""

_GRID = 2048  # grid points per run of normalised time (at least 2 per checkpoint)


@dataclass(frozen=True, kw_only=True)
class Truth2026:
    """Constants of the 2026 truth family; defaults are the calibrated preset (see the docs)."""

    # loss surface
    E: float = 2.4
    A: float = 215.6
    alpha: float = 0.3478
    lam: float = 0.237
    B_data: float = 227.5
    beta: float = 0.2788
    K: float = 3.200
    gamma: float = 0.3478
    L_init: float = 10.45
    U: float = 7.4
    s_unigram: float = 1.326
    k_soft: float = 3.0
    # learning rate
    eta0: float = 3.0e-3
    a_eta: float = 0.33
    a_batch: float = 0.3
    p: float = 0.9
    chi: float = 0.3
    c_noise: float = 0.4
    lag_frac: float = 0.05
    c_warmup: float = 0.1
    warmup_steps0: float = 100.0
    c_wd: float = 0.01
    wd_opt: float = 0.1
    sgd_lr_ratio: float = 100.0
    sgd_efficiency: float = 0.03
    batch_noise: float = 512.0
    # shape
    AR0: float = 100.0
    c_deep: float = 0.004
    c_wide: float = 0.008
    c_head: float = 0.003
    c_ffn: float = 0.01
    # noise and validation batches
    sigma_seed: float = 0.02
    sigma_mb: float = 0.02
    sigma_run: float = 0.003
    sigma_val_seq: float = 0.5
    seed: int = 0
    # runtime (seconds on one B200)
    peak_flops: float = 2.25e15
    mfu_max: float = 0.55
    d_half: float = 384.0
    tokens_half: float = 8192.0
    float32_speed: float = 0.25
    step_overhead: float = 0.002
    layer_step_overhead: float = 0.0005
    val_batch_overhead: float = 0.003
    chunk_overhead: float = 0.2866
    setup_seconds: float = 35.0
    # memory (bytes)
    memory_bytes: float = B200_MEMORY_BYTES
    act_bytes_d: float = ACT_BYTES_D
    act_bytes_f: float = ACT_BYTES_F

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str = "truth") -> Truth2026:
        """Build a truth from a mapping; every key is optional, unknown keys are an error.

        The checks are the 2025 truth's key and number checks
        (:func:`bayes_scaling.simulator.truth.checked_numbers`), without its range table and its
        probe of the 2025 loss surface, which do not apply to this family.

        Raises
        ------
        InvalidTruthError
            Naming the source and the offending key or value.
        """
        return cls(**checked_numbers(cls, values, source=source, ranges=None))

    def to_dict(self) -> dict[str, Any]:
        """The truth as a JSON-ready mapping (every key)."""
        return asdict(self)


def load_truth_2026(path: str | Path | None) -> Truth2026:
    """Read a truth JSON file; ``None`` gives the default preset.

    Raises
    ------
    InvalidTruthError
        If the file is missing, not JSON, or names an unknown key or a non-number.
    """
    if path is None:
        return Truth2026()
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidTruthError(f"{path}: no such truth file") from None
    except json.JSONDecodeError as exc:
        raise InvalidTruthError(f"{path}: not valid JSON ({exc})") from None
    return Truth2026.from_mapping(values, source=str(path))


@dataclass(frozen=True, kw_only=True)
class RunOutcome:
    """What one run does, in simulated seconds from the start of its training clock.

    ``val_losses[i]`` becomes known at ``chunk_end_seconds[i]``. ``oom`` runs fail before the
    clock starts (``failure`` holds the message). ``train_seconds`` is the full loop's length.
    """

    val_losses: tuple[float, ...]
    chunk_end_seconds: tuple[float, ...]
    train_seconds: float
    setup_seconds: float
    oom: bool
    failure: str | None


def schedule(config: TrainingConfig, u: np.ndarray) -> np.ndarray:
    """The learning rate at normalised times ``u = step / S`` (optax's warmup-cosine).

    Warmup runs linearly from ``init_value`` to ``peak_value`` over ``floor(S warmup_frac)``
    steps; the cosine ends at ``peak * final_lr_frac`` at ``S`` (its length counts the warmup).
    """
    sched = config.optimizer_config.lr_scheduler
    steps = config.total_optimizer_steps
    w = math.floor(steps * sched.warmup_frac) / steps
    end = sched.peak_value * sched.final_lr_frac
    warm = sched.init_value + (sched.peak_value - sched.init_value) * u / max(w, 1e-300)
    frac = np.clip((u - w) / max(1.0 - w, 1e-300), 0.0, 1.0)
    cosine = end + (sched.peak_value - end) * 0.5 * (1.0 + np.cos(np.pi * frac))
    return np.where(u < w, warm, cosine)


def optimal_learning_rate_2026(truth: Truth2026, config: TrainingConfig) -> float:
    """The truth's optimal peak learning rate ``eta*`` for this model, batch and optimizer."""
    arch = config.architecture_config
    n = _non_embedding(config)
    eta = (
        truth.eta0
        * (n / 1e8) ** (-truth.a_eta)
        * (config.train_batch_size / 128.0) ** truth.a_batch
    )
    if not isinstance(config.optimizer_config, AdamWConfig):
        eta *= truth.sgd_lr_ratio
    del arch
    return float(eta)


def _non_embedding(config: TrainingConfig) -> float:
    arch = config.architecture_config
    return float(
        non_embedding_params_2026(
            arch.hidden_size,
            arch.num_hidden_layers,
            arch.intermediate_size,
            arch.head_dim,
            attention_bias=arch.attention_bias,
        )
    )


def _shape_factor(truth: Truth2026, config: TrainingConfig) -> float:
    arch = config.architecture_config
    aspect = arch.hidden_size / arch.num_hidden_layers
    c_ar = truth.c_deep if aspect < truth.AR0 else truth.c_wide
    ffn = arch.intermediate_size / (8.0 * arch.hidden_size / 3.0)
    return (
        1.0
        + c_ar * math.log(aspect / truth.AR0) ** 2
        + truth.c_head * math.log(arch.head_dim / 64.0) ** 2
        + truth.c_ffn * math.log(ffn) ** 2
    )


def mean_curve(truth: Truth2026, config: TrainingConfig) -> np.ndarray:
    """Noise-free validation loss at each of the ``n_evals`` checkpoints, shape ``(n_evals,)``.

    Non-increasing in tokens; see the module docstring for the family.
    """
    arch = config.architecture_config
    opt = config.optimizer_config
    n_evals = config.n_evals
    steps = float(config.total_optimizer_steps)
    per = max(2, math.ceil(_GRID / n_evals))
    u = np.linspace(0.0, 1.0, n_evals * per + 1)
    eta_star = optimal_learning_rate_2026(truth, config)
    rho = schedule(config, u) / eta_star
    efficiency = 1.0 if isinstance(opt, AdamWConfig) else truth.sgd_efficiency
    # Progress per step grows with the batch up to the noise scale (McCandlish et al. 2018),
    # normalised to 1 at 128 sequences.
    batch = float(config.train_batch_size)
    efficiency *= (128.0 + truth.batch_noise) / 128.0 * batch / (batch + truth.batch_noise)
    rate = efficiency * np.minimum(rho, 1.0) ** truth.p
    # S1: learning-rate area in steps at the optimal rate (trapezoid in normalised time).
    area = np.concatenate(([0.0], np.cumsum(0.5 * (rate[1:] + rate[:-1]) * np.diff(u)))) * steps
    # Exponential moving average of rho with a lag of lag_frac of the run (Tissue et al.'s
    # momentum), solved exactly on the grid for piecewise-constant input.
    decay = np.exp(-np.diff(u) / truth.lag_frac)
    ema = np.empty_like(rho)
    ema[0] = rho[0]
    for i in range(1, rho.size):
        ema[i] = decay[i - 1] * ema[i - 1] + (1.0 - decay[i - 1]) * rho[i]
    idx = np.arange(1, n_evals + 1) * per
    tokens = u[idx] * steps * SEQ_LEN * config.train_batch_size
    tables = 1 if arch.tie_word_embeddings else 2
    n_eff = _non_embedding(config) + truth.lam * tables * arch.vocab_size * arch.hidden_size
    noise_floor = truth.c_noise * ema[idx] * math.sqrt(128.0 / batch)
    base = (
        truth.E
        + truth.A * n_eff ** (-truth.alpha)
        + truth.B_data * tokens ** (-truth.beta)
        + truth.K * np.maximum(area[idx], 1e-12) ** (-truth.gamma)
        + noise_floor
    )
    rho_peak = opt.lr_scheduler.peak_value / eta_star
    warmup_steps = math.floor(steps * opt.lr_scheduler.warmup_frac)
    penalties = truth.chi * max(math.log(rho_peak), 0.0) ** 2 + truth.c_warmup * min(
        rho_peak, 10.0
    ) ** 2 * math.exp(-warmup_steps / truth.warmup_steps0)
    if isinstance(opt, AdamWConfig):
        wd_gap = math.log((opt.weight_decay + 1e-3) / (truth.wd_opt + 1e-3))
        penalties += min(truth.c_wd * wd_gap**2, 0.1)
    raw = base * _shape_factor(truth, config) + penalties
    unigram = truth.U + (truth.L_init - truth.U) * np.exp(-area[idx] / truth.s_unigram)
    k = truth.k_soft
    mean = -np.logaddexp(-k * unigram, -k * raw) / k
    return np.minimum.accumulate(mean)


def _standard_normals(text: str, size: int) -> np.ndarray:
    digest = hashlib.sha256(text.encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little")).standard_normal(size)


def _training_identity(config: TrainingConfig) -> str:
    """The unique id of the config with max_runtime_seconds fixed: the training it describes."""
    return config_unique_id(config.model_copy(update={"max_runtime_seconds": 1.0}))


def _sequence_offsets(truth: Truth2026) -> np.ndarray:
    """Per-sequence loss offsets of the fixed validation set (512 sequences, mean exactly 0)."""
    z = _standard_normals(f"val-set:{truth.seed}", N_VAL_TOKENS // SEQ_LEN)
    return truth.sigma_val_seq * (z - z.mean())


def _to_bfloat16(x: np.ndarray) -> np.ndarray:
    """Round float32 values to the nearest bfloat16 (ties to even), returned as float32."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32)


def observed_curve(truth: Truth2026, config: TrainingConfig) -> np.ndarray:
    """The losses the run reports: mean curve + fixed noise, averaged over validation batches.

    The noise is a per-run offset: ``sigma_seed`` by ``(training, model_seed)``, ``sigma_mb``
    (scaled by ``sqrt(128 / B)``) by the training, ``sigma_run`` by the full configuration
    (GPU nondeterminism: a new ``max_runtime_seconds`` gives a slightly different run). Each
    validation batch's mean is the curve plus its sequences' offsets; ``bfloat16`` runs round it
    to bf16, and the report is the float32 mean of the batch means.
    """
    training = _training_identity(config)
    z_seed, z_mb = _standard_normals(f"{truth.seed}:{training}", 2)
    (z_run,) = _standard_normals(f"{truth.seed}:{config_unique_id(config)}", 1)
    offset = (
        truth.sigma_seed * z_seed
        + truth.sigma_mb * math.sqrt(128.0 / config.train_batch_size) * z_mb
        + truth.sigma_run * z_run
    )
    curve = mean_curve(truth, config) + offset
    n_batches = (N_VAL_TOKENS // SEQ_LEN) // config.val_batch_size
    batch_offsets = _sequence_offsets(truth).reshape(n_batches, -1).mean(axis=1)
    batch_means = (curve[:, None] + batch_offsets[None, :]).astype(np.float32)
    if config.architecture_config.dtype == "bfloat16":
        batch_means = _to_bfloat16(batch_means)
    return batch_means.mean(axis=1, dtype=np.float32)


def _utilisation(truth: Truth2026, hidden: int, tokens: int) -> float:
    width = hidden**2 / (hidden**2 + truth.d_half**2)
    return truth.mfu_max * width * tokens / (tokens + truth.tokens_half)


def chunk_seconds(truth: Truth2026, config: TrainingConfig) -> float:
    """Simulated seconds of one chunk: its training steps, its evaluation, the host overhead."""
    arch = config.architecture_config
    shape = (arch.hidden_size, arch.num_hidden_layers, arch.intermediate_size)
    speed = truth.peak_flops * (1.0 if arch.dtype == "bfloat16" else truth.float32_speed)
    step_tokens = SEQ_LEN * config.train_batch_size
    train_fpt = float(train_flops_per_token_2026(*shape, vocab_size=arch.vocab_size))
    step = step_tokens * train_fpt / (speed * _utilisation(truth, arch.hidden_size, step_tokens))
    step += truth.step_overhead + truth.layer_step_overhead * arch.num_hidden_layers
    val_tokens = SEQ_LEN * config.val_batch_size
    eval_fpt = float(eval_flops_per_token_2026(*shape, vocab_size=arch.vocab_size))
    val_batch = val_tokens * eval_fpt / (speed * _utilisation(truth, arch.hidden_size, val_tokens))
    n_val_batches = (N_VAL_TOKENS // SEQ_LEN) // config.val_batch_size
    return (
        config.optimizer_steps_per_eval * step
        + n_val_batches * (val_batch + truth.val_batch_overhead)
        + truth.chunk_overhead
    )


def memory_bytes(truth: Truth2026, config: TrainingConfig) -> float:
    """Bytes a training step needs: weights, gradients, optimizer state, activations, logits.

    The rule is :func:`bayes_scaling.memory2026.config_memory_bytes` (its one home) with the
    truth's ``act_bytes_d`` and ``act_bytes_f``.
    """
    return config_memory_bytes(config, act_bytes_d=truth.act_bytes_d,
                               act_bytes_f=truth.act_bytes_f)


def simulate_run(truth: Truth2026, config: TrainingConfig) -> RunOutcome:
    """Everything a run of ``config`` does: its curve, chunk end times, or its OOM failure."""
    needed = memory_bytes(truth, config)
    if needed > truth.memory_bytes:
        message = (
            "XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory while trying to allocate "
            f"{int(needed)} bytes (device has {int(truth.memory_bytes)})."
        )
        return RunOutcome(
            val_losses=(),
            chunk_end_seconds=(),
            train_seconds=0.0,
            setup_seconds=truth.setup_seconds,
            oom=True,
            failure=message,
        )
    chunk = chunk_seconds(truth, config)
    ends = tuple(chunk * (i + 1) for i in range(config.n_evals))
    losses = tuple(float(v) for v in observed_curve(truth, config))
    return RunOutcome(
        val_losses=losses,
        chunk_end_seconds=ends,
        train_seconds=ends[-1],
        setup_seconds=truth.setup_seconds,
        oom=False,
        failure=None,
    )

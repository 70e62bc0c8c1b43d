"""Candidate 2026 training runs, and how the scaling-law model sees them.

The space the loop searches: width (``num_attention_heads * head_dim``), depth, head dimension,
intermediate size (a ratio of the width), peak learning rate, warmup fraction, batch size and
training tokens (a tokens-per-parameter ratio), always AdamW in bfloat16 with every optimizer field
explicit (:func:`training_config`). :func:`generate_training_candidates` draws a random subset,
each with its ``max_runtime_seconds`` from the runtime model, and keeps those whose reservation
fits the remaining seconds.

The law's view (:func:`law_features`). The statistical model of :mod:`bayes_scaling.model` is
fitted on per-run features (width, depth, batch size, learning rate, compute, N, D). A 2026 run
enters with its width, depth, batch size, peak learning rate, its exact training tokens ``T`` and
the **2026 counts of its own architecture** (:mod:`bayes_scaling.count_family`, family
:data:`LAW_FAMILY`): ``N`` = the 2026 non-embedding count
``L (4 d^2 + 3 d f + 2 hd + 2 d) + d`` (:func:`bayes_scaling.params2026.non_embedding_params_2026`;
the token table and the LM head excluded), the embedding side ``2 V d`` (token table and untied
head) at the model's weight ``lam``, and ``C = 6 N T``, with no embedding term in the token
convention, so the model's tokens are exactly ``T``, and its warmup steps
``floor(S warmup_frac)`` (:func:`warmup_steps`), which switch on the 2026 model terms (the
warmup penalty :func:`bayes_scaling.law.warmup_penalty` and the early-plateau cap, see
:mod:`bayes_scaling.model`). The intermediate size and the head dimension therefore enter the law
through ``N``; what they do beyond their parameter count the law has no term for: their effect is
absorbed by the noise, and the recommendation picks each, and the warmup fraction (whose term
vanishes at the target's length), from the completed runs' residuals (:func:`best_by_residual`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bayes_scaling.api2026.schemas import (
    MAX_TRAIN_TOKENS,
    SEQ_LEN,
    AdamWConfig,
    TrainingConfig,
    WarmupCosineDecay,
)
from bayes_scaling.count_family import family_2026, intermediate_size_for
from bayes_scaling.params2026 import (
    architecture_2026,
    count_params_2026,
    non_embedding_params_2026,
)
from bayes_scaling.space import RunConfig

__all__ = [
    "DESIGN_N_EVALS",
    "LAW_FAMILY",
    "CandidateSpace2026",
    "best_by_residual",
    "generate_training_candidates",
    "initial_design_2026",
    "law_features",
    "law_run_config",
    "price",
    "round_tokens",
    "training_config",
    "training_key",
    "schedule_warmup_steps",
    "warmup_steps",
]

#: Evaluations of a design run: only the final loss enters the fit and evaluation is charged.
DESIGN_N_EVALS = 4
#: The count family of the fitted 2026 law: its posterior's optimum searches shapes of head
#: dimension 64 and ``intermediate_size = 8d/3`` (rounded to 64), counted in 2026 units.
LAW_FAMILY = family_2026(head_dim=64, intermediate_ratio=8.0 / 3.0)
VAL_BATCH_SIZE = 32


@dataclass(frozen=True, kw_only=True)
class CandidateSpace2026:
    """The searched values (each drawn uniformly from its tuple; tokens log-uniformly)."""

    head_dims: tuple[int, ...] = (32, 64, 64, 128)
    num_heads: tuple[int, ...] = tuple(range(2, 17))
    num_layers: tuple[int, ...] = tuple(range(2, 17))
    width_range: tuple[int, int] = (128, 1536)
    intermediate_ratios: tuple[float, ...] = (2.0, 8.0 / 3.0, 3.0, 4.0)
    peak_learning_rates: tuple[float, ...] = tuple(
        float(f"{x:.3g}") for x in np.geomspace(1e-4, 1e-2, 9)
    )
    warmup_fracs: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1)
    batch_sizes: tuple[int, ...] = (32, 64, 128, 256)
    tokens_per_param: tuple[float, float] = (2.0, 200.0)


def round_tokens(tokens: float, batch_size: int, n_evals: int) -> int:
    """Tokens rounded down to a multiple of ``512 * batch_size * n_evals`` (at least one)."""
    unit = SEQ_LEN * batch_size * n_evals
    return int(max(1, min(int(tokens // unit), MAX_TRAIN_TOKENS // unit)) * unit)


def training_config(
    *,
    hidden_size: int,
    num_layers: int,
    head_dim: int,
    intermediate_size: int,
    peak_learning_rate: float,
    warmup_frac: float,
    batch_size: int,
    tokens: float,
    max_runtime_seconds: float,
    n_evals: int = DESIGN_N_EVALS,
    model_seed: int = 0,
) -> TrainingConfig:
    """A complete, validated TrainingConfig: AdamW with every field explicit, bfloat16, untied.

    ``tokens`` is rounded down by :func:`round_tokens`; ``max_runtime_seconds`` is rounded up to
    0.1 s (so equal decisions give equal keys).
    """
    arch = architecture_2026(
        hidden_size, num_layers, hidden_size // head_dim, intermediate_size, head_dim=head_dim
    )
    optimizer = AdamWConfig(
        lr_scheduler=WarmupCosineDecay(
            peak_value=float(peak_learning_rate), final_lr_frac=0.1,
            warmup_frac=float(warmup_frac), init_value=0.0,
        ),
        weight_decay=0.01, beta1=0.9, beta2=0.95, eps=1e-8, eps_root=1e-8, grad_clip_norm=1.0,
    )
    return TrainingConfig(
        architecture_config=arch,
        optimizer_config=optimizer,
        train_batch_size=int(batch_size),
        val_batch_size=VAL_BATCH_SIZE,
        n_evals=int(n_evals),
        total_train_tokens=round_tokens(tokens, batch_size, n_evals),
        max_runtime_seconds=min(math.ceil(float(max_runtime_seconds) * 10) / 10, 43200.0),
        model_seed=int(model_seed),
    )


def training_key(config: TrainingConfig) -> str:
    """The equality key of the *training* (every field but ``max_runtime_seconds``).

    Two configurations that differ only in their reservation train identically; the loop never
    buys the same training twice.
    """
    return config.model_copy(update={"max_runtime_seconds": 1.0}).unique_id


def price(config: TrainingConfig, runtime, *, reservation_z: float = 3.0) -> TrainingConfig:
    """``config`` with ``max_runtime_seconds`` from the runtime model (rounded up to 0.1 s)."""
    seconds = float(runtime.reservation([config], z=reservation_z)[0])
    return config.model_copy(
        update={"max_runtime_seconds": min(math.ceil(seconds * 10) / 10, 43200.0)}
    )


def law_run_config(config: TrainingConfig) -> RunConfig:
    """The law's view of a 2026 run as a :class:`RunConfig`: ``train_flops = 6 N T``.

    ``N`` is the run's 2026 non-embedding count (see the module docstring).
    """
    arch = config.architecture_config
    d, layers = arch.hidden_size, arch.num_hidden_layers
    n = int(count_params_2026(arch).non_embedding)
    return RunConfig(
        d_model=d, num_layers=layers, num_heads=arch.num_attention_heads,
        batch_size=config.train_batch_size,
        learning_rate=float(config.optimizer_config.lr_scheduler.peak_value),
        train_flops=int(6 * n * config.total_train_tokens),
    )


def law_features(configs: Sequence[TrainingConfig]):
    """Model features of 2026 runs, counted on each run's own architecture.

    The family is :data:`LAW_FAMILY` (see the module docstring).
    """
    from bayes_scaling.features import RunFeatures

    rows = [law_run_config(c) for c in configs]
    counts = [count_params_2026(c.architecture_config) for c in configs]
    n = np.array([c.non_embedding for c in counts], np.float64)
    flops = np.array([r.train_flops for r in rows], np.float64)
    return RunFeatures(
        d_model=np.array([r.d_model for r in rows], np.float64),
        num_layers=np.array([r.num_layers for r in rows], np.float64),
        num_heads=np.array([r.num_heads for r in rows], np.float64),
        batch_size=np.array([r.batch_size for r in rows], np.float64),
        learning_rate=np.array([r.learning_rate for r in rows], np.float64),
        flops=flops,
        n_params=n,
        n_tokens=flops / (6.0 * n),
        block_params=n,
        embedding_params=np.array([c.total - c.non_embedding for c in counts], np.float64),
        flops_embedding_params=np.zeros(len(rows)),
        warmup_steps=np.array([warmup_steps(c) for c in configs], np.float64),
        family=LAW_FAMILY,
    )


def schedule_warmup_steps(total_steps, warmup_frac) -> np.ndarray:
    """Warmup steps ``floor(S warmup_frac)`` of runs of ``S`` optimizer steps (arrays broadcast).

    As optax's warmup-cosine schedule takes them (spec).
    """
    return np.floor(np.asarray(total_steps, np.float64) * warmup_frac)


def warmup_steps(config: TrainingConfig) -> int:
    """The run's warmup steps (:func:`schedule_warmup_steps` of its optimizer steps)."""
    return int(schedule_warmup_steps(config.total_optimizer_steps,
                                     config.optimizer_config.lr_scheduler.warmup_frac))


def _draw_shape(rng: np.random.Generator, space: CandidateSpace2026):
    while True:
        head_dim = int(rng.choice(space.head_dims))
        heads = int(rng.choice(space.num_heads))
        width = head_dim * heads
        if space.width_range[0] <= width <= space.width_range[1]:
            break
    ratio = float(rng.choice(space.intermediate_ratios))
    return (width, int(rng.choice(space.num_layers)), head_dim,
            intermediate_size_for(width, ratio))


def generate_training_candidates(
    rng: np.random.Generator,
    num: int,
    runtime,
    *,
    max_reservation: float,
    space: CandidateSpace2026 | None = None,
    reservation_z: float = 3.0,
) -> list[TrainingConfig]:
    """``num`` random draws of the space, priced by ``runtime``; those that fit are kept.

    Parameters
    ----------
    rng : numpy.random.Generator
        Seeded by the caller from its ``rng_key``.
    num : int
    runtime : RuntimeModel
        Gives each candidate's ``max_runtime_seconds``.
    max_reservation : float
        Candidates whose reservation exceeds this (seconds) are dropped.
    """
    space = space or CandidateSpace2026()
    drafts = []
    low, high = (math.log(v) for v in space.tokens_per_param)
    for _ in range(num):
        width, layers, head_dim, inter = _draw_shape(rng, space)
        n = float(non_embedding_params_2026(width, layers, inter, head_dim))
        drafts.append(dict(
            hidden_size=width, num_layers=layers, head_dim=head_dim, intermediate_size=inter,
            peak_learning_rate=float(rng.choice(space.peak_learning_rates)),
            warmup_frac=float(rng.choice(space.warmup_fracs)),
            batch_size=int(rng.choice(space.batch_sizes)),
            tokens=n * math.exp(rng.uniform(low, high)),
        ))
    return _priced(drafts, runtime, max_reservation, reservation_z)


def _priced(drafts, runtime, max_reservation, reservation_z) -> list[TrainingConfig]:
    if not drafts:
        return []
    unpriced = [training_config(**d, max_runtime_seconds=1.0) for d in drafts]
    reserve = runtime.reservation(unpriced, z=reservation_z)
    seen, out = set(), []
    for draft, seconds in zip(drafts, reserve, strict=True):
        if seconds > max_reservation or seconds >= 43200.0:
            continue
        cfg = training_config(**draft, max_runtime_seconds=float(seconds))
        if cfg.unique_id not in seen:
            seen.add(cfg.unique_id)
            out.append(cfg)
    return out


def initial_design_2026(
    rng: np.random.Generator, num: int, runtime, *, budget_seconds: float
) -> list[TrainingConfig]:
    """A small space-filling design, sized by the runtime *prior* (deterministic on resume).

    Widths from 128 to 640 (head dimension 64, intermediate ``8d/3``), depths 2-10 and learning
    rates in [3e-4, 3e-3] stratified; each run's median predicted time under the prior is
    stratified on a log grid over [0.2%, 1%] of the budget (about 5% in all for 8 runs), which
    fixes its tokens. The configurations carry ``max_runtime_seconds = 1``: the loop prices each
    with the runtime model of its time (:func:`price`) when it submits it.
    """
    u = (rng.permutation(num) + 0.5) / num
    v = (rng.permutation(num) + 0.5) / num
    w = (rng.permutation(num) + 0.5) / num
    drafts = []
    for i in range(num):
        width = int(64 * round((128 + (i / max(num - 1, 1)) * 512) / 64))
        layers = int(2 + round(u[i] * 8))
        seconds = budget_seconds * math.exp(math.log(0.002) + v[i] * math.log(5.0))
        lr = math.exp(math.log(3e-4) + w[i] * math.log(10.0))
        draft = dict(
            hidden_size=width, num_layers=layers, head_dim=64,
            intermediate_size=intermediate_size_for(width, 8.0 / 3.0),
            peak_learning_rate=float(f"{lr:.3g}"), warmup_frac=0.05,
            batch_size=(64, 128)[i % 2], tokens=1.0,
        )
        probe = training_config(**draft, max_runtime_seconds=1.0)
        draft["tokens"] = runtime.tokens_for_seconds(probe, seconds)
        drafts.append(training_config(**draft, max_runtime_seconds=1.0))
    return drafts


def best_by_residual(values: Sequence, residuals: Sequence[float], default, *, min_count: int = 3):
    """The value whose runs have the lowest median residual (observed - predicted loss).

    Only values seen in at least ``min_count`` runs compete; ``default`` if none qualifies or the
    default's own group is within 0.005 nats of the best (no evidence to move off it).
    """
    groups: dict = {}
    for value, res in zip(values, residuals, strict=True):
        groups.setdefault(value, []).append(float(res))
    scored = {k: float(np.median(v)) for k, v in groups.items() if len(v) >= min_count}
    if not scored:
        return default
    best = min(scored, key=scored.get)
    if default in scored and scored[default] <= scored[best] + 0.005:
        return default
    return best

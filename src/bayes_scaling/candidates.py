"""Candidate queries over the training API's whole space, thinned so scoring stays fast.

The full space (about 1,500 shapes x 2 batch sizes x a learning-rate grid x 16 computes) has
hundreds of thousands of points; scoring all of them after every refit would dominate the run.
:func:`generate_candidates` draws a random subset of it (explicit ``rng_key``) within the
remaining budget, plus a focused subset of shapes whose size is near the current posterior's
compute-optimal size at each affordable compute, where the information about ``N_opt`` lies.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import jax
import numpy as np

from bayes_scaling.params import non_embedding_params
from bayes_scaling.space import (
    BATCH_SIZES,
    LEARNING_RATE_RANGE,
    TRAIN_FLOPS,
    RunConfig,
    iter_shapes,
)

__all__ = [
    "CandidateConfig",
    "all_shapes",
    "generate_candidates",
    "learning_rate_grid",
    "shape_for_n_params",
]


@dataclass(frozen=True, kw_only=True)
class CandidateConfig:
    """How many candidates to score per step and on which grid.

    Parameters
    ----------
    num_random : int
        Uniform random candidates from the whole affordable space.
    num_focus : int
        Extra candidates whose size is within ``focus_width`` (natural log) of the posterior's
        optimal size at their compute.
    focus_width : float
        Half-width in ``ln N`` of the focused set.
    num_learning_rates : int
        Points of the log grid over the API's learning-rate range.
    d_model_step : int
        Step of the ``d_model`` grid (the API accepts any integer; 64 keeps heads of size 64).
    head_dim : int or None
        None (the default): every power-of-two head count the API accepts that divides
        ``d_model``. A number: for each ``(d_model, num_layers)`` only the head count whose head
        dimension is nearest it in log, so the queries are shaped like the models a practitioner
        trains (and the recommendation is, :mod:`bayes_scaling.recommend`); the law has no
        head-count term, so other head counts put an unmodelled penalty into the runs.
    """

    num_random: int = 2500
    num_focus: int = 1500
    focus_width: float = 0.7
    num_learning_rates: int = 7
    d_model_step: int = 64
    head_dim: int | None = None

    def __post_init__(self) -> None:
        for name in ("num_random", "num_focus", "num_learning_rates", "d_model_step"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: expected an integer >= 0, got {value!r}")
        if self.num_learning_rates < 1 or self.d_model_step < 1:
            raise ValueError(
                "num_learning_rates and d_model_step: expected integers >= 1, got "
                f"{self.num_learning_rates} and {self.d_model_step}"
            )
        if not self.focus_width > 0:
            raise ValueError(f"focus_width: expected a number > 0, got {self.focus_width}")
        if self.head_dim is not None and (isinstance(self.head_dim, bool)
                                          or not isinstance(self.head_dim, int)
                                          or self.head_dim < 1):
            raise ValueError(f"head_dim: expected None or an integer >= 1, got {self.head_dim!r}")


def learning_rate_grid(num: int) -> np.ndarray:
    """``num`` learning rates log-spaced over the API's range, rounded to 4 significant digits."""
    low, high = LEARNING_RATE_RANGE
    grid = np.geomspace(low, high, num) if num > 1 else np.array([np.sqrt(low * high)])
    return np.array([float(f"{x:.4g}") for x in grid])


@functools.lru_cache(maxsize=8)
def all_shapes(d_model_step: int = 64, head_dim: int | None = None) -> np.ndarray:
    """Every valid ``(d_model, num_layers, num_heads)`` as an int array of shape (K, 3).

    With ``head_dim``, one head count per ``(d_model, num_layers)``: the one whose head
    dimension ``d_model / num_heads`` is nearest ``head_dim`` in log (ties: more heads).
    """
    shapes = np.array(list(iter_shapes(d_model_step)), dtype=np.int64)
    if head_dim is None:
        return shapes
    miss = np.abs(np.log(shapes[:, 0] / shapes[:, 2] / head_dim))
    order = np.lexsort((-shapes[:, 2], miss, shapes[:, 1], shapes[:, 0]))
    ranked = shapes[order]
    first = np.ones(len(ranked), bool)
    first[1:] = np.any(ranked[1:, :2] != ranked[:-1, :2], axis=1)
    return ranked[first]


def _shape_n_params(shapes: np.ndarray) -> np.ndarray:
    return np.asarray(non_embedding_params(shapes[:, 0], shapes[:, 1]), np.float64)


def shape_for_n_params(n_params: float, *, d_model_step: int = 64) -> tuple[int, int, int]:
    """Find the API shape whose non-embedding count is nearest ``n_params`` (in log).

    Near-ties prefer head dimension 64 and an aspect ratio ``d_model / num_layers`` near 64.
    """
    shapes = all_shapes(d_model_step)
    n = _shape_n_params(shapes)
    head_dim = shapes[:, 0] / shapes[:, 2]
    aspect = shapes[:, 0] / shapes[:, 1]
    cost = (
        np.abs(np.log(n / n_params))
        + 0.05 * np.abs(np.log(aspect / 64.0))
        + 0.05 * np.abs(np.log(head_dim / 64.0))
    )
    d_model, num_layers, num_heads = shapes[int(np.argmin(cost))]
    return int(d_model), int(num_layers), int(num_heads)


def _configs(shapes, batch_sizes, learning_rates, flops) -> list[RunConfig]:
    return [
        RunConfig(
            d_model=int(s[0]),
            num_layers=int(s[1]),
            num_heads=int(s[2]),
            batch_size=int(b),
            learning_rate=float(lr),
            train_flops=int(c),
        )
        for s, b, lr, c in zip(shapes, batch_sizes, learning_rates, flops, strict=True)
    ]


def generate_candidates(
    rng_key,
    *,
    remaining_flops: float,
    paid: Iterable[RunConfig] = (),
    focus_n_params: Mapping[int, float] | None = None,
    config: CandidateConfig | None = None,
) -> list[RunConfig]:
    """Random valid queries that fit the remaining budget and were not paid before.

    Parameters
    ----------
    rng_key : jax.Array
        Randomness of the thinning.
    remaining_flops : float
        Only computes ``<= remaining_flops`` are proposed.
    paid : iterable of RunConfig
        Configurations already answered (never proposed again: a repeat carries no information).
    focus_n_params : mapping of int to float, optional
        ``{train_flops: n_params}``: the posterior's optimal size at each compute; adds
        ``config.num_focus`` candidates within ``config.focus_width`` of it.
    config : CandidateConfig, optional

    Returns
    -------
    list of RunConfig
        Distinct, valid for the API (ranges, divisibility) and affordable; possibly empty.
    """
    config = config or CandidateConfig()
    flops_levels = np.array([c for c in TRAIN_FLOPS if c <= remaining_flops], dtype=np.int64)
    if flops_levels.size == 0:
        return []
    shapes = all_shapes(config.d_model_step, config.head_dim)
    n_shape = _shape_n_params(shapes)
    lrs = learning_rate_grid(config.num_learning_rates)
    bss = np.array(BATCH_SIZES)
    seed = int(jax.random.randint(rng_key, (), 0, 2**31 - 1))
    rng = np.random.default_rng(seed)

    def draw(shape_idx: np.ndarray, flops: np.ndarray) -> list[RunConfig]:
        k = shape_idx.size
        return _configs(
            shapes[shape_idx], rng.choice(bss, k), rng.choice(lrs, k), flops
        )

    k = config.num_random
    proposals = draw(rng.integers(0, len(shapes), k), rng.choice(flops_levels, k))
    if focus_n_params and config.num_focus:
        per_level = max(1, config.num_focus // len(flops_levels))
        for flops in flops_levels:
            target = focus_n_params.get(int(flops))
            if target is None or not np.isfinite(target) or target <= 0:
                continue
            near = np.flatnonzero(np.abs(np.log(n_shape / target)) < config.focus_width)
            if near.size == 0:
                near = np.array([int(np.argmin(np.abs(np.log(n_shape / target))))])
            proposals += draw(rng.choice(near, per_level), np.full(per_level, flops))
    seen = {c.key() for c in paid}
    unique: list[RunConfig] = []
    for candidate in proposals:
        key = candidate.key()
        if key not in seen:
            seen.add(key)
            unique.append(candidate)
    return unique

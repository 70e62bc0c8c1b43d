"""The training API's parameter space: ranges, validation with the API's messages, grids.

The ranges and messages are those of the CS336 assignment 3 training API (DESIGN.md section 2).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from bayes_scaling.errors import InvalidConfigError

__all__ = [
    "BATCH_SIZES",
    "CONFIG_FIELDS",
    "D_MODEL_RANGE",
    "LEARNING_RATE_RANGE",
    "NUM_HEADS_RANGE",
    "NUM_LAYERS_RANGE",
    "TRAIN_FLOPS",
    "RunConfig",
    "iter_shapes",
    "loss_problem",
    "parse_config",
    "validate_config",
]

D_MODEL_RANGE = (64, 1024)
NUM_LAYERS_RANGE = (2, 24)
NUM_HEADS_RANGE = (2, 16)
BATCH_SIZES = (128, 256)
LEARNING_RATE_RANGE = (1e-4, 1e-3)
TRAIN_FLOPS = tuple(
    int(m * 10**e) for e in range(13, 18) for m in (1, 3, 6)
) + (10**18,)

#: The API's query parameters of a configuration, in the API's order.
CONFIG_FIELDS = (
    "d_model", "num_layers", "num_heads", "batch_size", "learning_rate", "train_flops"
)


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """One query of the training API: a model shape, its hyperparameters and its compute.

    Construction does not validate (the simulator evaluates configurations outside the API's
    ranges); call :func:`validate_config` at the edges.
    """

    d_model: int
    num_layers: int
    num_heads: int
    batch_size: int
    learning_rate: float
    train_flops: int

    def to_query(self) -> dict[str, Any]:
        """The API's query parameters, in the API's names."""
        return asdict(self)

    def key(self) -> tuple:
        """Identity of the configuration: equal keys are the same (free, identical) query."""
        return (
            int(self.d_model),
            int(self.num_layers),
            int(self.num_heads),
            int(self.batch_size),
            float(self.learning_rate),
            int(self.train_flops),
        )


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidConfigError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        raise InvalidConfigError(f"{name} must be an integer, got {value!r}") from None
    if not math.isfinite(as_float) or as_float != int(as_float):
        raise InvalidConfigError(f"{name} must be an integer, got {value!r}")
    return int(as_float)


def _as_float(name: str, value: Any) -> float:
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        raise InvalidConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(as_float):
        raise InvalidConfigError(f"{name} must be a finite number, got {value!r}")
    return as_float


def parse_config(raw: Mapping[str, Any]) -> RunConfig:
    """Build a :class:`RunConfig` from a mapping of strings or numbers (a query, a CSV row).

    Raises
    ------
    InvalidConfigError
        If a field is missing or is not a number of the right kind. Ranges are not checked here.
    """
    missing = [name for name in CONFIG_FIELDS if name not in raw]
    if missing:
        raise InvalidConfigError(f"missing parameter(s): {', '.join(missing)}")
    return RunConfig(
        d_model=_as_int("d_model", raw["d_model"]),
        num_layers=_as_int("num_layers", raw["num_layers"]),
        num_heads=_as_int("num_heads", raw["num_heads"]),
        batch_size=_as_int("batch_size", raw["batch_size"]),
        learning_rate=_as_float("learning_rate", raw["learning_rate"]),
        train_flops=_as_int("train_flops", raw["train_flops"]),
    )


def _check_range(name: str, value: float, bounds: tuple[float, float]) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise InvalidConfigError(f"{name} must be in range [{low}, {high}], got {value}")


def validate_config(config: RunConfig) -> RunConfig:
    """Check a configuration against the API's space, in the API's order and words.

    Returns the configuration unchanged so calls can be chained.

    Raises
    ------
    InvalidConfigError
        With the API's message, e.g. ``d_model must be in range [64, 1024], got 9999``.
    """
    _check_range("d_model", config.d_model, D_MODEL_RANGE)
    _check_range("num_layers", config.num_layers, NUM_LAYERS_RANGE)
    _check_range("num_heads", config.num_heads, NUM_HEADS_RANGE)
    if config.batch_size not in BATCH_SIZES:
        raise InvalidConfigError(
            f"batch_size must be one of {list(BATCH_SIZES)}, got {config.batch_size}"
        )
    _check_range("learning_rate", config.learning_rate, LEARNING_RATE_RANGE)
    if config.train_flops not in TRAIN_FLOPS:
        raise InvalidConfigError(
            f"train_flops must be one of {[int(f) for f in TRAIN_FLOPS]}, got {config.train_flops}"
        )
    if config.d_model % config.num_heads:
        raise InvalidConfigError(
            f"d_model must be divisible by num_heads, got d_model={config.d_model} "
            f"and num_heads={config.num_heads}"
        )
    return config


def loss_problem(loss: object) -> str | None:
    """Why ``loss`` is not a usable answer of the API, or None when it is.

    A final training loss is a cross-entropy: a finite number above 0. Anything else (NaN,
    infinities, zero or negative values, a non-number) is impossible and must never be fitted.
    """
    if isinstance(loss, bool) or not isinstance(loss, (int, float)):
        return f"expected a number as the loss, got {loss!r}"
    if not math.isfinite(loss):
        return f"expected a finite loss, got {loss!r}"
    if loss <= 0:
        return f"expected a positive loss (a cross-entropy), got {loss!r}"
    return None


def iter_shapes(d_model_step: int = 64) -> Iterator[tuple[int, int, int]]:
    """Yield every valid ``(d_model, num_layers, num_heads)`` with d_model a multiple of the step.

    Head counts are the powers of two in the API's range that divide d_model.
    """
    d_low, d_high = D_MODEL_RANGE
    first = -(-d_low // d_model_step) * d_model_step
    for d_model in range(first, d_high + 1, d_model_step):
        for num_layers in range(NUM_LAYERS_RANGE[0], NUM_LAYERS_RANGE[1] + 1):
            for num_heads in (2, 4, 8, 16):
                if d_model % num_heads == 0:
                    yield d_model, num_layers, num_heads

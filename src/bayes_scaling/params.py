"""Exact parameter counts of the API's Transformer, and tokens for a FLOP budget.

:func:`count_params` builds :class:`~bayes_scaling.reference_model.TransformerLM` on PyTorch's
``meta`` device (no memory is allocated) and counts its parameters; it is the package's source of
truth (DESIGN.md section 4). :func:`non_embedding_params` and :func:`total_params` are closed forms
for hot paths, proved equal to the model over the API grid by ``tests/test_params.py``:

- non-embedding (everything but the token and position embeddings; the untied output head counts):
  ``L (12 d^2 + 7 d) + d + 32000 d``;
- total: non-embedding plus ``32000 d + 512 d``.

The package's token convention is ``tokens = flops / (6 * non-embedding params)``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from bayes_scaling.errors import InvalidConfigError

__all__ = [
    "ASPECT_RATIO_BAND",
    "CONTEXT_LENGTH",
    "HEAD_DIM",
    "OPTIMUM_BATCH_SIZES",
    "OPTIMUM_D_MODELS",
    "OPTIMUM_NUM_LAYERS",
    "PARAM_COUNT",
    "ParamCounts",
    "TARGET_D_MODEL_MAX",
    "TARGET_NUM_LAYERS_MAX",
    "VOCAB_SIZE",
    "block_params",
    "count_params",
    "embedding_side_params",
    "non_embedding_params",
    "practical_num_heads",
    "target_shape_grid",
    "tokens_for_flops",
    "total_params",
]

#: Vocabulary and context length of the API's model (DESIGN.md section 4).
VOCAB_SIZE = 32000
CONTEXT_LENGTH = 512
#: Head dimension of every shape the package searches or recommends.
HEAD_DIM = 64

#: The shape grid of the simulator's true optimum (DESIGN.md section 3), also searched by the
#: posterior's optimum: ``d_model`` in multiples of 64 up to 4096, 1-96 layers, batch 128 or 256.
OPTIMUM_D_MODELS = np.arange(64, 4096 + 1, 64)
OPTIMUM_NUM_LAYERS = np.arange(1, 96 + 1)
OPTIMUM_BATCH_SIZES = (128, 256)

#: The wider grid a recommendation at the target is chosen on (the target model may be larger
#: than the API allows): ``d_model`` in multiples of 64 up to 8192, 1-128 layers.
TARGET_D_MODEL_MAX = 8192
TARGET_NUM_LAYERS_MAX = 128
#: Aspect ratios ``d_model / num_layers`` searched at the target: the range over which Kaplan et
#: al. (2020, fig. 5) found the loss of a fixed-size model within a few percent of its best.
ASPECT_RATIO_BAND = (32.0, 256.0)

#: The count the package reports as "N" everywhere (report.json's ``param_count``).
PARAM_COUNT = "non_embedding"


class ParamCounts(NamedTuple):
    """Parameter counts of one shape.

    Attributes
    ----------
    non_embedding : int
        All parameters but the token and position embeddings (the output head counts).
    embedding : int
        Token embeddings plus position embeddings (``32000 d + 512 d``).
    total : int
        ``non_embedding + embedding``.
    """

    non_embedding: int
    embedding: int
    total: int


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise InvalidConfigError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def count_params(d_model: int, num_layers: int, num_heads: int) -> ParamCounts:
    """Count the parameters of the reference model of this shape (built on the meta device).

    Parameters
    ----------
    d_model, num_layers, num_heads : int
        The shape; positive integers with ``d_model`` divisible by ``num_heads``. No API range
        limits apply (the recommended target model may be larger than the API allows).

    Returns
    -------
    ParamCounts
        ``non_embedding``, ``embedding`` and ``total`` counts. Results are cached per shape.

    Raises
    ------
    InvalidConfigError
        If a value is not a positive integer or ``d_model % num_heads != 0``.
    """
    d_model = _check_positive_int("d_model", d_model)
    num_layers = _check_positive_int("num_layers", num_layers)
    num_heads = _check_positive_int("num_heads", num_heads)
    if d_model % num_heads:
        raise InvalidConfigError(
            f"d_model must be divisible by num_heads, got d_model={d_model} "
            f"and num_heads={num_heads}"
        )
    return _count_params_cached(d_model, num_layers, num_heads)


@functools.lru_cache(maxsize=4096)
def _count_params_cached(d_model: int, num_layers: int, num_heads: int) -> ParamCounts:
    from bayes_scaling.reference_model import TransformerConfig, TransformerLM

    config = TransformerConfig(d_model=d_model, num_layers=num_layers, num_heads=num_heads)
    model = TransformerLM(config, device="meta")
    total = sum(p.numel() for p in model.parameters())
    embedding = sum(p.numel() for p in model.embedding_parameters())
    return ParamCounts(non_embedding=total - embedding, embedding=embedding, total=total)


def _as_numeric(value):
    """Turn lists into arrays and integer arrays into int64 (no overflow); pass scalars."""
    if isinstance(value, (list, tuple)):
        value = np.asarray(value)
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.integer):
        value = value.astype(np.int64)
    return value


def block_params(d_model, num_layers):
    """Parameters of the transformer blocks and the final LayerNorm: ``L (12 d^2 + 7 d) + d``.

    Broadcasts over NumPy or JAX arrays (float inputs stay float, for the model's surface).
    """
    d = _as_numeric(d_model)
    return _as_numeric(num_layers) * (12 * d * d + 7 * d) + d


def embedding_side_params(d_model):
    """Token and position embeddings plus the untied output head: ``2 * 32000 d + 512 d``."""
    return (2 * VOCAB_SIZE + CONTEXT_LENGTH) * _as_numeric(d_model)


def target_shape_grid() -> tuple[np.ndarray, np.ndarray]:
    """Every ``(d_model, num_layers)`` pair of the recommendation grid, int64 arrays of shape (K,).

    ``d_model`` in 64, 128, ..., ``TARGET_D_MODEL_MAX`` (head dimension 64), ``num_layers`` in
    1..``TARGET_NUM_LAYERS_MAX``; callers restrict the aspect ratio.
    """
    d_grid, l_grid = np.meshgrid(
        np.arange(HEAD_DIM, TARGET_D_MODEL_MAX + 1, HEAD_DIM, dtype=np.int64),
        np.arange(1, TARGET_NUM_LAYERS_MAX + 1, dtype=np.int64),
        indexing="ij",
    )
    return d_grid.ravel(), l_grid.ravel()


def practical_num_heads(d_model) -> np.ndarray:
    """Heads of a shape practitioners would train, 0 where ``d_model`` has no such head count.

    Head dimension ``HEAD_DIM`` (64, as in GPT-2/3 up to 2.7B and the simulator's optimum) and an
    even number of heads, at least 2: ``d_model / 64`` where ``d_model`` is a multiple of 128
    (so never 1 head, nor an odd count such as 17 that tensor-parallel layouts cannot split).
    Head dimension 128 is not used: every width a multiple of 128 already has an even count of
    64-wide heads, and the shape penalty of the simulator's truth (DESIGN.md section 3) is zero
    only at 64. Broadcasts; int64.
    """
    d = np.asarray(d_model, dtype=np.int64)
    return np.where(d % (2 * HEAD_DIM) == 0, d // HEAD_DIM, 0).astype(np.int64)


def non_embedding_params(d_model, num_layers):
    """Non-embedding parameters ``L (12 d^2 + 7 d) + d + 32000 d`` (the output head included).

    Broadcasts over NumPy (or JAX) arrays; exact for integer inputs. Equal to
    ``count_params(d_model, num_layers, h).non_embedding`` for every valid ``h``.
    """
    return block_params(d_model, num_layers) + VOCAB_SIZE * _as_numeric(d_model)


def total_params(d_model, num_layers):
    """Total parameters: non-embedding plus token and position embeddings ``32000 d + 512 d``."""
    d = _as_numeric(d_model)
    return non_embedding_params(d, num_layers) + (VOCAB_SIZE + CONTEXT_LENGTH) * d


def tokens_for_flops(flops, n_params):
    """Tokens a FLOP budget buys under ``C = 6 N D``: ``flops / (6 * n_params)``.

    The package passes non-embedding parameters as ``n_params`` (its token convention).
    """
    return _as_numeric(flops) / (6 * _as_numeric(n_params))

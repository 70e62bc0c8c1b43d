"""Exact parameter counts and FLOPs per token of the 2026 API's model (spec section 4).

:func:`count_params_2026` builds :class:`~bayes_scaling.reference_model_2026.CausalLM2026` on
PyTorch's ``meta`` device and counts its parameters; it is the source of truth. The closed forms
below serve hot paths and are proved equal to the model over a dense sample of architectures
(and, for FLOPs, to torch's FLOP counter) by ``tests/test_params2026.py``. Notation:
d = hidden_size, L = num_hidden_layers, f = intermediate_size, hd = head_dim, V = vocab_size,
s = seq_len (512); the API forces ``num_key_value_heads = num_attention_heads`` and
``num_attention_heads * head_dim = d``.

- per layer: ``4 d^2 + 3 d f + 2 hd + 2 d`` (+ ``4 d`` with attention bias);
- non-embedding: ``L * per_layer + d`` (everything but the token table and the LM head matrix,
  tied or not, so tying does not change it; the final norm counts);
- total: non-embedding + ``V d`` (token table) + ``V d`` if untied (LM head);
- matmul parameters ``N_mm = L (4 d^2 + 3 d f) + d V`` (the head counts even when tied; the
  embedding gather does not);
- training FLOPs per token: ``6 N_mm + 12 L s d`` (forward + backward matrix products,
  attention over the full s x s scores; a causal kernel does about half of the attention term);
- forward (validation) FLOPs per token: ``2 N_mm + 4 L s d``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from bayes_scaling.api2026.schemas import SEQ_LEN, BasicTransformerConfig, architecture_error
from bayes_scaling.errors import InvalidConfigError
from bayes_scaling.params import _as_numeric as _num

__all__ = [
    "DEFAULT_RMS_NORM_EPS",
    "DEFAULT_ROPE_THETA",
    "VOCAB_SIZE",
    "ParamCounts2026",
    "architecture_2026",
    "count_params_2026",
    "eval_flops_per_token_2026",
    "flops_per_token",
    "matmul_params",
    "matmul_params_2026",
    "measured_flops_per_token_2026",
    "non_embedding_params_2026",
    "total_params_2026",
    "train_flops_per_token_2026",
]

VOCAB_SIZE = 32000
"""The Llama-2 tokenizer's vocabulary, what every 2026 configuration should use."""
DEFAULT_RMS_NORM_EPS = 1e-6
"""``rms_norm_eps`` of the spec's notebook configuration."""
DEFAULT_ROPE_THETA = 1_000_000
"""``rope_theta`` of the spec's notebook configuration."""


class ParamCounts2026(NamedTuple):
    """Parameter counts of one 2026 architecture.

    Attributes
    ----------
    total : int
        Every parameter (a tied head counted once).
    non_embedding : int
        ``total`` minus the token table and the untied LM head matrix.
    embedding : int
        The token table ``V d``.
    lm_head : int
        ``V d`` if untied, else 0.
    matmul : int
        Parameters that enter a matrix product per token, ``L (4 d^2 + 3 d f) + d V``.
    """

    total: int
    non_embedding: int
    embedding: int
    lm_head: int
    matmul: int


def architecture_2026(
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    intermediate_size: int,
    *,
    head_dim: int | None = None,
    tie_word_embeddings: bool = False,
    attention_bias: bool = False,
    vocab_size: int = VOCAB_SIZE,
    rms_norm_eps: float = DEFAULT_RMS_NORM_EPS,
    rope_theta: int = DEFAULT_ROPE_THETA,
    dtype: str = "bfloat16",
) -> BasicTransformerConfig:
    """A validated architecture (head dimension ``hidden_size / num_heads`` by default).

    Raises
    ------
    InvalidConfigError
        If the shape fails one of the API's checks (the API's message), or ``hidden_size`` is
        not divisible by ``num_heads`` when ``head_dim`` is omitted.
    """
    if head_dim is None:
        if num_heads <= 0 or hidden_size % num_heads:
            raise InvalidConfigError(
                f"hidden_size must be divisible by num_heads, got {hidden_size} and {num_heads}"
            )
        head_dim = hidden_size // num_heads
    arch = BasicTransformerConfig(
        attention_bias=attention_bias,
        head_dim=head_dim,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_attention_heads=num_heads,
        num_hidden_layers=num_layers,
        num_key_value_heads=num_heads,
        rms_norm_eps=rms_norm_eps,
        rope_theta=rope_theta,
        tie_word_embeddings=tie_word_embeddings,
        dtype=dtype,
        vocab_size=vocab_size,
    )
    message = architecture_error(arch)
    if message is not None:
        raise InvalidConfigError(message)
    return arch


@functools.lru_cache(maxsize=4096)
def count_params_2026(arch: BasicTransformerConfig) -> ParamCounts2026:
    """Count the parameters of the PyTorch model of ``arch``, built on the meta device.

    Raises
    ------
    InvalidConfigError
        If ``arch`` fails one of the API's architecture checks.
    """
    from torch import nn

    from bayes_scaling.reference_model_2026 import CausalLM2026

    model = CausalLM2026(arch, device="meta")
    total = sum(p.numel() for p in model.parameters())
    embedding = model.embed_tokens.weight.numel()
    lm_head = 0 if model.lm_head is None else model.lm_head.weight.numel()
    linear = sum(m.weight.numel() for m in model.layers.modules() if isinstance(m, nn.Linear))
    matmul = linear + embedding  # the head multiplies by a V x d matrix, tied or not
    return ParamCounts2026(
        total=total,
        non_embedding=total - embedding - lm_head,
        embedding=embedding,
        lm_head=lm_head,
        matmul=matmul,
    )


def measured_flops_per_token_2026(
    arch: BasicTransformerConfig, *, seq_len: int = SEQ_LEN, training: bool = True
) -> int:
    """FLOPs per token counted by torch on the meta-device model (slow; tests and the CLI)."""
    from bayes_scaling.reference_model_2026 import measure_flops_per_token

    return measure_flops_per_token(arch, seq_len, training=training)


def non_embedding_params_2026(
    hidden_size, num_layers, intermediate_size, head_dim, *, attention_bias=False
):
    """``L (4 d^2 + 3 d f + 2 hd + 2 d [+ 4 d]) + d``; broadcasts over arrays, exact for ints."""
    d, layers, f, hd = (_num(v) for v in (hidden_size, num_layers, intermediate_size, head_dim))
    per_layer = 4 * d * d + 3 * d * f + 2 * hd + 2 * d + (4 * d if attention_bias else 0)
    return layers * per_layer + d


def total_params_2026(
    hidden_size,
    num_layers,
    intermediate_size,
    head_dim,
    *,
    vocab_size=VOCAB_SIZE,
    tie_word_embeddings=False,
    attention_bias=False,
):
    """Non-embedding plus ``V d`` for the token table and ``V d`` more if untied."""
    d = _num(hidden_size)
    tables = 1 if tie_word_embeddings else 2
    return (
        non_embedding_params_2026(
            d, num_layers, intermediate_size, head_dim, attention_bias=attention_bias
        )
        + tables * _num(vocab_size) * d
    )


def matmul_params_2026(hidden_size, num_layers, intermediate_size, *, vocab_size=VOCAB_SIZE):
    """``N_mm = L (4 d^2 + 3 d f) + d V`` (the LM head counts even when tied)."""
    d, layers, f = (_num(v) for v in (hidden_size, num_layers, intermediate_size))
    return layers * (4 * d * d + 3 * d * f) + d * _num(vocab_size)


def train_flops_per_token_2026(
    hidden_size, num_layers, intermediate_size, *, vocab_size=VOCAB_SIZE, seq_len=SEQ_LEN
):
    """Training FLOPs per token ``6 N_mm + 12 L s d`` (matrix products, forward + backward)."""
    d, layers = _num(hidden_size), _num(num_layers)
    n_mm = matmul_params_2026(d, layers, intermediate_size, vocab_size=vocab_size)
    return 6 * n_mm + 12 * layers * _num(seq_len) * d


def eval_flops_per_token_2026(
    hidden_size, num_layers, intermediate_size, *, vocab_size=VOCAB_SIZE, seq_len=SEQ_LEN
):
    """Forward (validation) FLOPs per token ``2 N_mm + 4 L s d``."""
    d, layers = _num(hidden_size), _num(num_layers)
    n_mm = matmul_params_2026(d, layers, intermediate_size, vocab_size=vocab_size)
    return 2 * n_mm + 4 * layers * _num(seq_len) * d


def matmul_params(arch: BasicTransformerConfig) -> int:
    """``N_mm`` of a validated architecture (:func:`matmul_params_2026` on its fields)."""
    return int(
        matmul_params_2026(
            arch.hidden_size,
            arch.num_hidden_layers,
            arch.intermediate_size,
            vocab_size=arch.vocab_size,
        )
    )


def flops_per_token(arch: BasicTransformerConfig, *, seq_len: int = SEQ_LEN) -> tuple[int, int]:
    """``(training, validation)`` FLOPs per token of a validated architecture.

    Training ``6 N_mm + 12 L s d``, validation (forward only) ``2 N_mm + 4 L s d``, with
    attention over the full ``s x s`` scores (torch's FLOP counter's convention).
    """
    shape = (arch.hidden_size, arch.num_hidden_layers, arch.intermediate_size)
    train = train_flops_per_token_2026(*shape, vocab_size=arch.vocab_size, seq_len=seq_len)
    val = eval_flops_per_token_2026(*shape, vocab_size=arch.vocab_size, seq_len=seq_len)
    return int(train), int(val)

"""The training API's Transformer in PyTorch (CS336 assignment 3, DESIGN.md section 4).

A decoder-only Transformer language model: token and learned absolute position embeddings,
pre-norm blocks (LayerNorm without bias, multi-head causal self-attention without biases,
feed-forward ``Linear(d, 4d) -> GELU -> Linear(4d, d)`` with biases), a final LayerNorm without
bias and an untied output head without bias; dropout 0.1. This is the only module of the package
that imports torch. :mod:`bayes_scaling.params` builds it on the ``meta`` device to count
parameters without allocating memory; it is also a real, runnable module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from bayes_scaling.errors import InvalidConfigError
from bayes_scaling.params import CONTEXT_LENGTH, VOCAB_SIZE

__all__ = [
    "CONTEXT_LENGTH",
    "VOCAB_SIZE",
    "CausalSelfAttention",
    "FeedForward",
    "TransformerBlock",
    "TransformerConfig",
    "TransformerLM",
]


@dataclass(frozen=True, kw_only=True)
class TransformerConfig:
    """Shape of the reference Transformer; validated on construction.

    Raises
    ------
    InvalidConfigError
        If a size is not a positive integer or ``d_model`` is not divisible by ``num_heads``.
    """

    d_model: int
    num_layers: int
    num_heads: int
    vocab_size: int = VOCAB_SIZE
    context_length: int = CONTEXT_LENGTH
    dropout: float = 0.1

    def __post_init__(self) -> None:
        for name in ("d_model", "num_layers", "num_heads", "vocab_size", "context_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InvalidConfigError(f"{name}: expected a positive integer, got {value!r}")
        if self.d_model % self.num_heads:
            raise InvalidConfigError(
                f"d_model must be divisible by num_heads, got d_model={self.d_model} "
                f"and num_heads={self.num_heads}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise InvalidConfigError(f"dropout: expected a value in [0, 1), got {self.dropout!r}")


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with bias-free q, k, v and output projections."""

    def __init__(self, config: TransformerConfig, *, device=None) -> None:
        super().__init__()
        d = config.d_model
        self.num_heads = config.num_heads
        self.q_proj = nn.Linear(d, d, bias=False, device=device)
        self.k_proj = nn.Linear(d, d, bias=False, device=device)
        self.v_proj = nn.Linear(d, d, bias=False, device=device)
        self.output_proj = nn.Linear(d, d, bias=False, device=device)
        self.attn_dropout = config.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend causally; ``x`` has shape ``(batch, seq, d_model)``."""
        batch, seq, d = x.shape
        head_dim = d // self.num_heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, seq, self.num_heads, head_dim).transpose(1, 2)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        scores = q @ k.transpose(-2, -1) / math.sqrt(head_dim)
        mask = torch.ones(seq, seq, dtype=torch.bool, device=x.device).tril()
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = F.dropout(scores.softmax(dim=-1), self.attn_dropout, self.training)
        out = (weights @ v).transpose(1, 2).reshape(batch, seq, d)
        return self.output_proj(out)


class FeedForward(nn.Module):
    """Position-wise ``Linear(d, 4d) -> GELU -> Linear(4d, d)``, both with biases."""

    def __init__(self, config: TransformerConfig, *, device=None) -> None:
        super().__init__()
        d = config.d_model
        self.w1 = nn.Linear(d, 4 * d, bias=True, device=device)
        self.w2 = nn.Linear(4 * d, d, bias=True, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the feed-forward network to ``(batch, seq, d_model)``."""
        return self.w2(F.gelu(self.w1(x)))


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + drop(attn(ln1(x)))`` then ``x + drop(ffn(ln2(x)))``."""

    def __init__(self, config: TransformerConfig, *, device=None) -> None:
        super().__init__()
        d = config.d_model
        self.ln1 = nn.LayerNorm(d, bias=False, device=device)
        self.attn = CausalSelfAttention(config, device=device)
        self.ln2 = nn.LayerNorm(d, bias=False, device=device)
        self.ffn = FeedForward(config, device=device)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``(batch, seq, d_model)``."""
        x = x + self.dropout(self.attn(self.ln1(x)))
        return x + self.dropout(self.ffn(self.ln2(x)))


class TransformerLM(nn.Module):
    """The API's decoder-only language model.

    Parameters are named so that :meth:`embedding_parameters` can tell the token and position
    embeddings (``token_embeddings``, ``position_embeddings``) from the rest; the output head
    (``lm_head``) is untied and counts as a non-embedding parameter.
    """

    def __init__(self, config: TransformerConfig, *, device=None) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.token_embeddings = nn.Embedding(config.vocab_size, d, device=device)
        self.position_embeddings = nn.Embedding(config.context_length, d, device=device)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            TransformerBlock(config, device=device) for _ in range(config.num_layers)
        )
        self.ln_final = nn.LayerNorm(d, bias=False, device=device)
        self.lm_head = nn.Linear(d, config.vocab_size, bias=False, device=device)

    def embedding_parameters(self) -> list[nn.Parameter]:
        """Return the token and position embedding tables (what a non-embedding count omits)."""
        return [self.token_embeddings.weight, self.position_embeddings.weight]

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Next-token logits of shape ``(batch, seq, vocab)`` for ids of shape ``(batch, seq)``."""
        seq = token_ids.shape[-1]
        if seq > self.config.context_length:
            raise InvalidConfigError(
                f"sequence length: expected at most {self.config.context_length}, got {seq}"
            )
        positions = torch.arange(seq, device=token_ids.device)
        x = self.dropout(self.token_embeddings(token_ids) + self.position_embeddings(positions))
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.ln_final(x))

"""The 2026 course API's Transformer in PyTorch (``shared/API_2026.md`` section 4).

A Llama/Qwen-3-style pre-norm decoder. Per layer: RMSNorm -> attention -> residual, then
RMSNorm -> SwiGLU MLP ``down(silu(gate(x)) * up(x))`` (no biases) -> residual. Attention has
q/k/v/o projections (biased only with ``attention_bias``), QK-norm (one RMSNorm over
``head_dim`` for q and one for k, weights shared across heads), RoPE in the NeoX half-split
style with base ``rope_theta`` (no parameters), and causal softmax attention. A final RMSNorm
and the LM head follow; with ``tie_word_embeddings`` the head reuses the embedding matrix.
No dropout. ``num_key_value_heads`` equals ``num_attention_heads`` (the API rejects GQA).

Besides :mod:`bayes_scaling.reference_model` (the 2025 model), this is the only module of the
package that imports torch. :mod:`bayes_scaling.params2026` builds the model on the ``meta``
device to count parameters and FLOPs without allocating memory; it is also a runnable module.
Attention is written as explicit matrix products, so torch's FLOP counter sees every product.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from bayes_scaling.api2026.schemas import BasicTransformerConfig, architecture_error
from bayes_scaling.errors import InvalidConfigError

__all__ = [
    "Attention2026",
    "CausalLM2026",
    "DecoderLayer2026",
    "SwiGLU",
    "measure_flops_per_token",
    "rotate_half_rope",
]


def _check(config: BasicTransformerConfig) -> None:
    message = architecture_error(config)
    if message is not None:
        raise InvalidConfigError(message)


def rotate_half_rope(x: torch.Tensor, theta: float) -> torch.Tensor:
    """Apply NeoX-style (half-split) rotary embeddings to ``x`` of shape ``(..., seq, heads, hd)``.

    Dimension ``i < hd/2`` pairs with ``i + hd/2``; position ``p`` rotates the pair by
    ``p * theta^(-2i/hd)``.
    """
    seq, head_dim = x.shape[-3], x.shape[-1]
    half = head_dim // 2
    inv_freq = theta ** (-torch.arange(half, device=x.device, dtype=torch.float32) * 2 / head_dim)
    angles = torch.arange(seq, device=x.device, dtype=torch.float32)[:, None] * inv_freq
    cos = angles.cos()[:, None, :].to(x.dtype)
    sin = angles.sin()[:, None, :].to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


class Attention2026(nn.Module):
    """Causal multi-head attention with QK-norm (shared across heads) and RoPE."""

    def __init__(self, config: BasicTransformerConfig, *, device=None, dtype=None) -> None:
        super().__init__()
        d, heads, hd = config.hidden_size, config.num_attention_heads, config.head_dim
        kv = config.num_key_value_heads
        bias = config.attention_bias
        kw = {"device": device, "dtype": dtype}
        self.num_heads, self.head_dim, self.rope_theta = heads, hd, float(config.rope_theta)
        self.q_proj = nn.Linear(d, heads * hd, bias=bias, **kw)
        self.k_proj = nn.Linear(d, kv * hd, bias=bias, **kw)
        self.v_proj = nn.Linear(d, kv * hd, bias=bias, **kw)
        self.o_proj = nn.Linear(heads * hd, d, bias=bias, **kw)
        self.q_norm = nn.RMSNorm(hd, eps=config.rms_norm_eps, **kw)
        self.k_norm = nn.RMSNorm(hd, eps=config.rms_norm_eps, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend causally over ``x`` of shape ``(batch, seq, hidden)``."""
        batch, seq, _ = x.shape
        shape = (batch, seq, self.num_heads, self.head_dim)
        q = rotate_half_rope(self.q_norm(self.q_proj(x).view(shape)), self.rope_theta)
        k = rotate_half_rope(self.k_norm(self.k_proj(x).view(shape)), self.rope_theta)
        v = self.v_proj(x).view(shape)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (batch, heads, seq, hd)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        mask = torch.ones(seq, seq, dtype=torch.bool, device=x.device).tril()
        weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(batch, seq, self.num_heads * self.head_dim)
        return self.o_proj(out)


class SwiGLU(nn.Module):
    """``down(silu(gate(x)) * up(x))`` with a free intermediate size and no biases."""

    def __init__(self, config: BasicTransformerConfig, *, device=None, dtype=None) -> None:
        super().__init__()
        d, f = config.hidden_size, config.intermediate_size
        kw = {"bias": False, "device": device, "dtype": dtype}
        self.gate_proj = nn.Linear(d, f, **kw)
        self.up_proj = nn.Linear(d, f, **kw)
        self.down_proj = nn.Linear(f, d, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the MLP to ``(batch, seq, hidden)``."""
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer2026(nn.Module):
    """Pre-norm layer: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``."""

    def __init__(self, config: BasicTransformerConfig, *, device=None, dtype=None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.input_layernorm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps, **kw)
        self.self_attn = Attention2026(config, **kw)
        self.post_attention_layernorm = nn.RMSNorm(
            config.hidden_size, eps=config.rms_norm_eps, **kw
        )
        self.mlp = SwiGLU(config, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer to ``(batch, seq, hidden)``."""
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class CausalLM2026(nn.Module):
    """The 2026 API's decoder-only language model.

    ``embed_tokens`` is the token table; ``lm_head`` is None when the embeddings are tied (the
    head then multiplies by ``embed_tokens.weight``).

    Raises
    ------
    InvalidConfigError
        If ``config`` fails one of the API's architecture checks (the API's message).
    """

    def __init__(self, config: BasicTransformerConfig, *, device=None) -> None:
        super().__init__()
        _check(config)
        dtype = torch.bfloat16 if config.dtype == "bfloat16" else torch.float32
        kw = {"device": device, "dtype": dtype}
        self.config = config
        d = config.hidden_size
        self.embed_tokens = nn.Embedding(config.vocab_size, d, **kw)
        self.layers = nn.ModuleList(
            DecoderLayer2026(config, **kw) for _ in range(config.num_hidden_layers)
        )
        self.norm = nn.RMSNorm(d, eps=config.rms_norm_eps, **kw)
        self.lm_head = (
            None
            if config.tie_word_embeddings
            else nn.Linear(d, config.vocab_size, bias=False, **kw)
        )

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(batch, seq, vocab)`` for ids of shape ``(batch, seq)``."""
        x = self.embed_tokens(token_ids)
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x)
        if self.lm_head is None:
            return F.linear(x, self.embed_tokens.weight)
        return self.lm_head(x)


def measure_flops_per_token(
    config: BasicTransformerConfig, seq_len: int, *, training: bool = True
) -> int:
    """FLOPs per token of one training step (or one forward pass), counted by torch on ``meta``.

    Runs a forward pass of one ``seq_len``-token sequence through the model built on ``meta``
    (and, with ``training``, the backward pass of its summed logits) under
    :class:`torch.utils.flop_counter.FlopCounterMode`, and divides by ``seq_len``. The counter
    sees matrix products only: norms, RoPE, softmax and the embedding gather count zero, and
    attention is counted over the full ``seq_len x seq_len`` score matrix.
    """
    from torch.utils.flop_counter import FlopCounterMode

    model = CausalLM2026(config, device="meta")
    ids = torch.zeros((1, seq_len), dtype=torch.long, device="meta")
    with FlopCounterMode(display=False) as counter:
        if training:
            model(ids).float().sum().backward()
        else:
            with torch.no_grad():
                model(ids)
    total = counter.get_total_flops()
    if total % seq_len:
        raise InvalidConfigError(f"FLOPs per pass {total} not divisible by seq_len {seq_len}")
    return total // seq_len

"""`bayes-scaling params --api 2026`: exact counts and FLOPs per token of the 2026 model.

Registered by :mod:`bayes_scaling.cli.params_cmd` (``add_arguments``) and dispatched there on
``--api 2026`` (``handle``). Counts come from the PyTorch model built on the meta device
(:func:`bayes_scaling.params2026.count_params_2026`); FLOPs from the closed form that
``tests/test_params2026.py`` proves equal to torch's FLOP counter.
"""

from __future__ import annotations

import argparse
import json

from bayes_scaling.errors import InvalidConfigError
from bayes_scaling.params2026 import (
    architecture_2026,
    count_params_2026,
    eval_flops_per_token_2026,
    train_flops_per_token_2026,
)

__all__ = ["add_arguments", "handle"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the 2026 architecture flags (``--num-layers`` and ``--num-heads`` are shared)."""
    group = parser.add_argument_group("--api 2026 (the Spring-2026 job API's model)")
    group.add_argument("--hidden-size", type=int, default=None, help="model width d")
    group.add_argument("--intermediate-size", type=int, default=None, help="SwiGLU width f")
    group.add_argument(
        "--head-dim", type=int, default=None, help="head dimension (default: hidden / heads)"
    )
    group.add_argument("--tie-word-embeddings", action="store_true", help="tie the LM head")
    group.add_argument("--attention-bias", action="store_true", help="biases on q/k/v/o")
    group.add_argument("--vocab-size", type=int, default=32000, help="vocabulary (default 32000)")


def handle(args: argparse.Namespace) -> int:
    """Print total, non-embedding and embedding counts and FLOPs per token."""
    for flag in ("hidden_size", "intermediate_size"):
        if getattr(args, flag) is None:
            raise InvalidConfigError(f"--{flag.replace('_', '-')} is required with --api 2026")
    arch = architecture_2026(
        args.hidden_size,
        args.num_layers,
        args.num_heads,
        args.intermediate_size,
        head_dim=args.head_dim,
        tie_word_embeddings=args.tie_word_embeddings,
        attention_bias=args.attention_bias,
        vocab_size=args.vocab_size,
    )
    counts = count_params_2026(arch)
    shape = (arch.hidden_size, arch.num_hidden_layers, arch.intermediate_size)
    train = int(train_flops_per_token_2026(*shape, vocab_size=arch.vocab_size))
    evaluate = int(eval_flops_per_token_2026(*shape, vocab_size=arch.vocab_size))
    if args.json:
        record = {
            "api": "2026",
            "architecture": arch.model_dump(),
            "total_params": counts.total,
            "non_embedding_params": counts.non_embedding,
            "embedding_params": counts.embedding,
            "lm_head_params": counts.lm_head,
            "matmul_params": counts.matmul,
            "train_flops_per_token": train,
            "eval_flops_per_token": evaluate,
        }
        print(json.dumps(record, indent=2))
        return 0
    print(
        f"shape: hidden_size={arch.hidden_size}, num_layers={arch.num_hidden_layers}, "
        f"num_heads={arch.num_attention_heads}, head_dim={arch.head_dim}, "
        f"intermediate_size={arch.intermediate_size}, "
        f"{'tied' if arch.tie_word_embeddings else 'untied'} head, "
        f"attention_bias={arch.attention_bias}"
    )
    print(f"total params:           {counts.total:>17,}")
    print(
        f"non-embedding params:   {counts.non_embedding:>17,}  "
        "(all but the token table and the LM head matrix)"
    )
    print(f"embedding params:       {counts.embedding:>17,}  (token table V*d)")
    print(f"LM head params:         {counts.lm_head:>17,}  (0 when tied)")
    print(f"matmul params N_mm:     {counts.matmul:>17,}  (layers' matrices + the V*d head)")
    print(
        f"train FLOPs per token:  {train:>17,}  "
        "(6 N_mm + 12 L s d, s = 512; forward + backward)"
    )
    print(f"eval FLOPs per token:   {evaluate:>17,}  (2 N_mm + 4 L s d; forward only)")
    return 0

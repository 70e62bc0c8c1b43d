"""`bayes-scaling params`: exact parameter counts of a shape, and the tokens a budget buys.

Counts come from the PyTorch reference model built on the meta device
(:func:`bayes_scaling.params.count_params`). Every line names the count it reports; with
``--train-flops`` the tokens follow the package convention ``flops / (6 * non-embedding)``.
"""

from __future__ import annotations

import argparse
import json
import math

from bayes_scaling.cli import params2026_cmd
from bayes_scaling.errors import InvalidConfigError
from bayes_scaling.params import CONTEXT_LENGTH, VOCAB_SIZE, count_params, tokens_for_flops

TOKENS_CONVENTION = "tokens = flops / (6 * non-embedding params)"
# Bounds far above any real model, so that counting (a meta-device build) stays instant.
_LARGEST = {"d_model": 2**16, "num_layers": 1024, "num_heads": 2**16}


def register(subparsers) -> None:
    """Add the `params` subcommand."""
    parser = subparsers.add_parser(
        "params",
        help="exact parameter counts of a model shape",
        description=(
            "Exact parameter counts of the API's Transformer (CS336 A3) for a shape: "
            "non-embedding (all but token and position embeddings; the output head counts), "
            "embedding, and total."
        ),
    )
    parser.add_argument(
        "--api", choices=("2025", "2026"), default="2025", help="which API's model (default 2025)"
    )
    parser.add_argument("--d-model", type=int, default=None, help="model width (--api 2025)")
    parser.add_argument("--num-layers", type=int, required=True, help="number of blocks")
    parser.add_argument("--num-heads", type=int, required=True, help="attention heads")
    parser.add_argument(
        "--train-flops",
        type=float,
        default=None,
        help=f"also print the tokens this budget buys ({TOKENS_CONVENTION})",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable JSON output")
    params2026_cmd.add_arguments(parser)
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    if args.api == "2026":
        return params2026_cmd.handle(args)
    if args.d_model is None:
        raise InvalidConfigError("--d-model is required with --api 2025")
    for name, high in _LARGEST.items():
        if getattr(args, name) > high:
            raise InvalidConfigError(
                f"--{name.replace('_', '-')}: expected at most {high}, got {getattr(args, name)}"
            )
    counts = count_params(args.d_model, args.num_layers, args.num_heads)
    flops = args.train_flops
    if flops is not None and not (math.isfinite(flops) and flops > 0):
        raise InvalidConfigError(f"--train-flops: expected a positive number, got {flops!r}")
    tokens = None if flops is None else float(tokens_for_flops(flops, counts.non_embedding))
    if args.json:
        record = {
            "d_model": args.d_model,
            "num_layers": args.num_layers,
            "num_heads": args.num_heads,
            "non_embedding_params": counts.non_embedding,
            "embedding_params": counts.embedding,
            "total_params": counts.total,
            "param_count": "non_embedding",
        }
        if flops is not None:
            record.update(
                train_flops=flops, tokens=tokens, tokens_convention=TOKENS_CONVENTION
            )
        print(json.dumps(record, indent=2))
        return 0
    print(
        f"shape: d_model={args.d_model}, num_layers={args.num_layers}, "
        f"num_heads={args.num_heads}"
    )
    print(
        f"non-embedding params: {counts.non_embedding:>15,}  "
        "(all but token and position embeddings; output head included; the package's N)"
    )
    print(f"embedding params:     {counts.embedding:>15,}  (token {VOCAB_SIZE}*d + position "
          f"{CONTEXT_LENGTH}*d)")
    print(f"total params:         {counts.total:>15,}  (non-embedding + embedding)")
    if flops is not None:
        print(
            f"tokens for {flops:.3g} FLOPs: {round(tokens):>11,}  "
            f"(package convention: {TOKENS_CONVENTION})"
        )
    return 0

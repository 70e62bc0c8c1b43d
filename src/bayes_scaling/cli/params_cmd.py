"""`bayes-scaling params` (being built; see the open issues)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add the `params` subcommand."""
    parser = subparsers.add_parser("params", help="(being built)")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    raise NotImplementedError("bayes-scaling params is being built")

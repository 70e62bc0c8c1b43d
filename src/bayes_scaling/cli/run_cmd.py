"""`bayes-scaling run` (being built; see the open issues)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add the `run` subcommand."""
    parser = subparsers.add_parser("run", help="(being built)")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    raise NotImplementedError("bayes-scaling run is being built")

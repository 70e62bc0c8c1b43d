"""`bayes-scaling isoflops` (being built; see the open issues)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add the `isoflops` subcommand."""
    parser = subparsers.add_parser("isoflops", help="(being built)")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    raise NotImplementedError("bayes-scaling isoflops is being built")

"""The ``bayes-scaling`` console script: the composition root.

Each subcommand lives in its own module with ``register(subparsers)``, which adds its parser and
sets ``handler`` to a function ``(args) -> int``. Errors of the package become one line on stderr
and exit status 2; nothing else here knows about files, servers or the loop.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from bayes_scaling.errors import BayesScalingError

__all__ = ["build_parser", "main"]

_COMMANDS = ("run", "serve", "fit", "isoflops", "params", "predict")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, one subparser per command."""
    from importlib import import_module

    parser = argparse.ArgumentParser(
        prog="bayes-scaling",
        description="Bayesian experiment design for language-model scaling laws.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMANDS:
        import_module(f"bayes_scaling.cli.{name}_cmd").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # Progress of our own library at INFO; third-party chatter (JAX's backend probe, arviz's
    # optional modules) only from WARNING up.
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("bayes_scaling").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.handler(args) or 0)
    except BayesScalingError as exc:
        print(f"bayes-scaling {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bayes-scaling {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

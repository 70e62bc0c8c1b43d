"""The ``bayes-scaling`` console script: the composition root.

Each subcommand lives in its own module with ``register(subparsers)``, which adds its parser and
sets ``handler`` to a function ``(args) -> int``. Every refusal is one line on stderr with exit
status 2: errors of the package, bad flags (the parser prints no usage block) and I/O failures
(a full disk, a read-only folder) alike; nothing else here knows about files, servers or the loop.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence

from bayes_scaling import __version__
from bayes_scaling.errors import BayesScalingError

__all__ = ["build_parser", "main"]

_COMMANDS = ("run", "serve", "fit", "isoflops", "params", "predict")

# "-1e17" is not a negative number to argparse (it knows only "-1" and "-1.5"), so a flag's
# negative value would read as an unknown option; glue such values to their flag.
_NEGATIVE = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|nan|infinity)$", re.I)


class _OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, one subparser per command."""
    from importlib import import_module

    parser = _OneLineParser(
        prog="bayes-scaling",
        description="Bayesian experiment design for language-model scaling laws.",
    )
    parser.add_argument("--version", action="version", version=f"bayes-scaling {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                       parser_class=_OneLineParser)
    for name in _COMMANDS:
        import_module(f"bayes_scaling.cli.{name}_cmd").register(subparsers)
    return parser


def _glue_negative_values(argv: Sequence[str]) -> list[str]:
    out: list[str] = []
    for token in argv:
        if out and _NEGATIVE.match(token) and out[-1].startswith("--") and "=" not in out[-1]:
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(_glue_negative_values(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # a refused flag (status 2), --help or --version (status 0)
        return exc.code if isinstance(exc.code, int) else 2
    # Progress of our own library at INFO; third-party chatter (JAX's backend probe, arviz's
    # optional modules) only from WARNING up.
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("bayes_scaling").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.handler(args) or 0)
    except BayesScalingError as exc:
        print(f"bayes-scaling {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"bayes-scaling {args.command}: error: {where}{exc.strerror or exc}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bayes-scaling {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Checks of command-line values, shared by the subcommands: each refuses with one line.

The ``argparse`` types (:func:`positive_number`, :func:`seed`, :func:`count`, ...) raise
``argparse.ArgumentTypeError`` so that the parser names the flag; :func:`output_dir` checks an
output folder before any work, without creating it.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from bayes_scaling.errors import InvalidConfigError

__all__ = [
    "MAX_COUNT",
    "add_seed_and_nuts_flags",
    "MAX_SEED",
    "count",
    "integer_in",
    "nonnegative_number",
    "output_dir",
    "port",
    "positive_number",
    "seed",
]

#: Largest ``--seed``: JAX's PRNGKey takes a 32-bit seed.
MAX_SEED = 2**32 - 1
#: Largest count flag (queries, NUTS sizes): far above any sensible run, far below overflow.
MAX_COUNT = 10**6


def _number(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def positive_number(text: str) -> float:
    """A finite number above 0 (budgets, computes)."""
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def nonnegative_number(text: str) -> float:
    """A finite number at least 0."""
    value = _number(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def url_error(url: str) -> str | None:
    """Why ``url`` is no training-API base URL, or None when it is one."""
    if url.startswith(("http://", "https://")):
        return None
    return f"expected an http:// or https:// URL, got {url!r}"


def api_url(text: str) -> str:
    """An http(s) base URL (``--api-url``): checked before any probe or request."""
    problem = url_error(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


def _integer(text: str, low: int, high: int, what: str) -> int:
    try:
        value = int(text, 10)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def seed(text: str) -> int:
    """A random seed: an integer in [0, 2**32 - 1]."""
    return _integer(text, 0, MAX_SEED, f"an integer in [0, {MAX_SEED}]")


def count(text: str) -> int:
    """A positive count (queries, warmup steps, draws, chains)."""
    return _integer(text, 1, MAX_COUNT, f"an integer in [1, {MAX_COUNT}]")


def integer_in(low: int, high: int):
    """An ``argparse`` type: an integer in ``[low, high]``."""

    def parse(text: str) -> int:
        return _integer(text, low, high, f"an integer in [{low}, {high}]")

    parse.__name__ = f"integer in [{low}, {high}]"
    return parse


def port(text: str) -> int:
    """A TCP port: an integer in [0, 65535] (0: any free port)."""
    return _integer(text, 0, 65535, "an integer in [0, 65535]")


def add_seed_and_nuts_flags(parser, *, what: str, num_warmup: int, num_samples: int,
                            num_chains: int) -> None:
    """Add ``--seed`` and the NUTS sizes ``--num-warmup/--num-samples/--num-chains``."""
    parser.add_argument("--seed", type=seed, default=0,
                        help=f"random seed of {what}, in [0, {MAX_SEED}] (default 0)")
    parser.add_argument("--num-warmup", type=count, default=num_warmup,
                        help=f"NUTS warmup steps per chain (default {num_warmup})")
    parser.add_argument("--num-samples", type=count, default=num_samples,
                        help=f"NUTS draws per chain after warmup (default {num_samples})")
    parser.add_argument("--num-chains", type=count, default=num_chains,
                        help=f"NUTS chains (default {num_chains})")


def output_dir(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Check that ``path`` can be the output folder, without creating anything.

    It must be a folder or not exist yet, and its nearest existing ancestor must be a writable
    folder.

    Raises
    ------
    InvalidConfigError
        One line naming the flag and the path.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InvalidConfigError(f"{flag} {path}: expected a folder, got an existing file")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise InvalidConfigError(f"{flag} {path}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK) or os.statvfs(probe).f_flag & os.ST_RDONLY:
        raise InvalidConfigError(f"{flag} {path}: {probe} is not writable")
    return path

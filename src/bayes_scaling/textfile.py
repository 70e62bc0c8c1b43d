"""Reading a user's text file (a truth, a keys file, a saved run config) with one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

from bayes_scaling.errors import BayesScalingError

__all__ = ["read_text"]


def read_text(path: str | os.PathLike, *, what: str, error: type[BayesScalingError]) -> str:
    """Return the UTF-8 text of ``path`` (a leading BOM dropped).

    Parameters
    ----------
    path
        The file.
    what
        What the file is, for the message (``"truth file"``).
    error
        The exception class to raise.

    Raises
    ------
    error
        One line naming the file: missing, a directory, unreadable, or not UTF-8.
    """
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise error(f"{path}: expected a {what}, got a directory") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: the {what} is not a UTF-8 text file ({exc.reason})") from None

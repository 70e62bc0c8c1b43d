"""Writing output files: atomically, and readable by others (mode 0644).

Every file the package writes (report.json, report.md, runs.csv, posterior.nc, figures,
experiment tables) goes through :func:`atomic_write`: a temporary file in the destination's
folder, made mode 0644 (``tempfile.mkstemp`` creates 0600, which hid reports from other users),
then ``os.replace``, so a killed process leaves either the old file or the new one, never a
truncated one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["FILE_MODE", "atomic_write", "atomic_write_lines", "atomic_write_text", "save_figure"]

#: Mode of every written file: owner read/write, everyone read.
FILE_MODE = 0o644


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Write ``path`` atomically: ``write(tmp)`` fills a temporary file, which then replaces it.

    Parameters
    ----------
    path : path-like
        Destination; its folder is created if missing.
    write : callable
        Called with the temporary file's path (it exists, empty); it writes the content there.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_lines(path: str | os.PathLike, lines) -> str:
    """Write ``lines`` joined by newlines (and a final one) atomically; return the joined text."""
    text = "\n".join(lines)
    atomic_write_text(path, text + "\n")
    return text


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 120) -> Path:
    """Save a matplotlib Figure as PNG atomically with the Agg canvas (no pyplot, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi,
                                                     bbox_inches="tight"))

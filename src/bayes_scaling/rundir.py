"""One owner per run directory and per ledger: exclusive file locks, and leftover cleanup.

:class:`ExclusiveLock` takes an ``flock`` on a lock file and writes the holder's PID into it. The
kernel releases the lock when the holder exits, however it exits (SIGKILL included), so a lock
left by a dead process is simply taken over: nothing has to decide whether a PID is stale. A
second live process gets :class:`~bayes_scaling.errors.LockedError` naming the holder's PID.
``flock`` locks belong to an open file, so two opens in one process also exclude each other.

:func:`remove_temporary_files` deletes what an atomic write killed half-way leaves behind
(``.report.json.x1y2z3ab.tmp``, ``.runs.csv.x1y2z3ab``): call it while holding the lock.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import time
from pathlib import Path

from bayes_scaling.errors import LockedError

__all__ = ["RUN_LOCK_NAME", "ExclusiveLock", "remove_temporary_files"]

logger = logging.getLogger(__name__)

#: The lock file of a run directory.
RUN_LOCK_NAME = ".bayes-scaling.lock"

# tempfile.mkstemp(prefix=".NAME.", [suffix=".tmp"]): 8 random characters from [a-z0-9_].
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}(\.tmp)?$")

# The errors of a non-blocking flock on a file another open file holds.
_HELD = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
# How long a refused acquire waits for the holder's PID to appear before naming no one.
_PID_WAIT_S = 1.0


class ExclusiveLock:
    """An exclusive, non-blocking lock on ``path`` (created if absent), held until released.

    Parameters
    ----------
    path
        The lock file.
    what
        What the lock protects, for the error message (e.g. ``"run directory runs/x"``).

    Raises
    ------
    LockedError
        On :meth:`acquire` if another open file holds the lock; names the holder's PID.
    """

    def __init__(self, path: str | os.PathLike, *, what: str | None = None) -> None:
        self._path = Path(path)
        self._what = what or str(self._path)
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        """The lock file."""
        return self._path

    def acquire(self) -> ExclusiveLock:
        """Take the lock (returns self); a lock of a dead process is taken over."""
        if self._fd is not None:
            return self
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        # A new holder writes its PID just after taking the lock, and a leaving one clears it just
        # before letting go: in either window the file is empty, so look again for a moment.
        deadline = time.monotonic() + _PID_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                holder = _read_pid(fd)
                if exc.errno in _HELD and not holder and time.monotonic() < deadline:
                    time.sleep(0.01)
                    continue
                os.close(fd)
                if exc.errno not in _HELD:
                    raise
                who = f"process {holder}" if holder else "another process"
                raise LockedError(
                    f"{self._what} is in use by bayes-scaling {who} (lock {self._path}); "
                    "wait for it to finish or stop it"
                ) from None
        previous = _read_pid(fd)
        if previous and previous != os.getpid():
            logger.info("took over the lock %s left by process %s (no longer running)",
                        self._path, previous)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Release the lock (idempotent). The file stays: removing it would race a new holder."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> ExclusiveLock:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""


def remove_temporary_files(directory: str | os.PathLike) -> list[Path]:
    """Delete leftovers of interrupted atomic writes in ``directory``; return what was removed."""
    directory = Path(directory)
    removed = []
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        if _TEMPORARY.match(entry.name) and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    if removed:
        logger.info("removed %d leftover temporary file(s) in %s", len(removed), directory)
    return removed

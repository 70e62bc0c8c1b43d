"""Run-directory locks: one holder, its PID in the refusal, a dead holder's lock taken over."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from bayes_scaling.errors import LockedError
from bayes_scaling.rundir import RUN_LOCK_NAME, ExclusiveLock, remove_temporary_files

HOLD = """
import sys, time
from bayes_scaling.rundir import ExclusiveLock
ExclusiveLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_a_second_holder_is_refused_with_the_pid_and_a_dead_ones_lock_is_recovered(tmp_path):
    lock_path = tmp_path / RUN_LOCK_NAME
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockedError) as excinfo:
            ExclusiveLock(lock_path, what=f"run directory {tmp_path}").acquire()
        message = str(excinfo.value)
        assert f"run directory {tmp_path} is in use by bayes-scaling process {holder.pid}" in (
            message) and "\n" not in message
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert lock_path.read_text().strip() == str(holder.pid)  # the dead holder's PID is left
    start = time.monotonic()
    with ExclusiveLock(lock_path):  # taken over at once, no waiting
        assert time.monotonic() - start < 1.0
        assert lock_path.read_text().strip() == str(os.getpid())
        with pytest.raises(LockedError, match=str(os.getpid())):
            ExclusiveLock(lock_path).acquire()  # another open file in this process
    assert lock_path.read_text() == ""  # released


def test_a_refusal_in_the_moment_before_the_holder_writes_its_pid_still_names_it(tmp_path):
    lock_path = tmp_path / RUN_LOCK_NAME
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held, PID not written yet
    writer = threading.Timer(0.1, os.pwrite, args=(fd, b"4242\n", 0))
    writer.start()
    try:
        with pytest.raises(LockedError, match=r"in use by bayes-scaling process 4242 "):
            ExclusiveLock(lock_path).acquire()
        os.ftruncate(fd, 0)  # a holder that never names itself: refused after the wait
        with pytest.raises(LockedError, match=r"in use by bayes-scaling another process "):
            ExclusiveLock(lock_path).acquire()
    finally:
        writer.join()
        os.close(fd)


def test_leftover_temporary_files_are_removed_and_nothing_else(tmp_path):
    leftovers = [".report.json.k2j4h_x9.tmp", ".loss_at_target.png.a1b2c3d4.tmp",
                 ".runs.csv.qwer7yui"]
    kept = ["report.json", "runs.csv", RUN_LOCK_NAME, ".hidden", "ledger.sqlite",
            ".notes.txt.tmp"]
    for name in leftovers + kept:
        (tmp_path / name).write_text("x")
    removed = remove_temporary_files(tmp_path)
    assert sorted(p.name for p in removed) == sorted(leftovers)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)

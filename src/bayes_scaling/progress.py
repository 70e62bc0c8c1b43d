"""Progress of long steps (the loop, NUTS fits, figures) behind one small interface.

Library code takes a :class:`Progress` (default :data:`NO_PROGRESS`, which does nothing) and opens
one :class:`Task` per step; only the command line decides to draw bars
(:func:`cli_progress`: tqdm bars with ETA on stderr, off with ``--quiet`` or when stderr is not a
terminal). While bars are shown, log lines are written above them instead of through them.

NUTS runs inside one compiled program, so its progress comes back through
:func:`scan_with_progress`: a ``jax.lax.scan`` that calls the host every few iterations
(``jax.debug.callback``, as numpyro's own progress bar does) with the phase and the number of
iterations done; a :class:`ProgressChannel` routes those calls to the task open at the time.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import jax
import numpy as np

__all__ = [
    "NO_PROGRESS",
    "LoopProgress",
    "Progress",
    "ProgressChannel",
    "Task",
    "TqdmProgress",
    "cli_progress",
    "quiet_logging",
    "scan_with_progress",
]

#: Phase codes that :func:`scan_with_progress` reports, and their names.
PHASES = ("warmup", "sampling")


class Task(Protocol):
    """One step with a known (or unknown) amount of work."""

    def advance(self, amount: float = 1) -> None:
        """Record ``amount`` more units done."""

    def note(self, text: str) -> None:
        """Show a short status (the phase, the last result) beside the bar."""

    def close(self) -> None:
        """Finish the step (idempotent)."""


class Progress(Protocol):
    """Opens tasks; :data:`NO_PROGRESS` when nobody watches."""

    def task(self, description: str, total: float | None = None, *, unit: str = "it",
             leave: bool = False, unit_scale: bool = False) -> Task:
        """Open a task of ``total`` units (None: unknown), described by ``description``.

        ``leave`` keeps the finished bar on screen; ``unit_scale`` prints large totals with SI
        prefixes (FLOPs).
        """


class _NullTask:
    def advance(self, amount: float = 1) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


class _NullProgress:
    def task(self, description: str, total: float | None = None, *, unit: str = "it",
             leave: bool = False, unit_scale: bool = False) -> Task:
        return _NullTask()


#: The progress of library calls nobody watches: every task is a no-op.
NO_PROGRESS: Progress = _NullProgress()


class _TqdmTask:
    def __init__(self, bar) -> None:
        self._bar = bar
        self._closed = False
        self._started = False

    def advance(self, amount: float = 1) -> None:
        if self._closed:
            return
        if not self._started:
            # The first unit of work starts the clock: time spent before it (compiling a
            # sampler) would otherwise make the first ETA absurd.
            self._started = True
            if self._bar.n == 0:
                self._bar.reset(total=self._bar.total)
        self._bar.update(amount)

    def note(self, text: str) -> None:
        if not self._closed:
            self._bar.set_postfix_str(text)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._bar.close()


class TqdmProgress:
    """tqdm bars on ``stream`` (default stderr); ``enabled=False`` draws nothing.

    Parameters
    ----------
    enabled : bool
    stream : file-like, optional
    """

    def __init__(self, *, enabled: bool = True, stream=None) -> None:
        self.enabled = enabled
        self.stream = sys.stderr if stream is None else stream

    def task(self, description: str, total: float | None = None, *, unit: str = "it",
             leave: bool = False, unit_scale: bool = False) -> Task:
        """Open a tqdm bar (a no-op task when disabled)."""
        if not self.enabled:
            return _NullTask()
        from tqdm import tqdm

        return _TqdmTask(tqdm(total=total, desc=description, unit=unit, leave=leave,
                              unit_scale=unit_scale, file=self.stream, dynamic_ncols=True,
                              mininterval=0.25))


@contextlib.contextmanager
def quiet_logging(quiet: bool) -> Iterator[None]:
    """With ``quiet``, the package logs only warnings and errors inside the ``with`` block."""
    package = logging.getLogger("bayes_scaling")
    previous = package.level
    if quiet:
        package.setLevel(max(previous, logging.WARNING))
    try:
        yield
    finally:
        package.setLevel(previous)


@contextlib.contextmanager
def cli_progress(*, quiet: bool = False, stream=None) -> Iterator[Progress]:
    """The command line's progress: bars on a terminal unless ``quiet``, nothing otherwise.

    While bars are on, the package's log lines go through ``tqdm.write`` so they print above the
    bars instead of breaking them.
    """
    stream = sys.stderr if stream is None else stream
    enabled = not quiet and bool(getattr(stream, "isatty", lambda: False)())
    if not enabled:
        yield TqdmProgress(enabled=False, stream=stream)
        return
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm(loggers=[logging.getLogger()]):
        yield TqdmProgress(enabled=True, stream=stream)


class ProgressChannel:
    """Routes host callbacks of a compiled sampler to the task open now (if any).

    A compiled program keeps the channel it was traced with; :meth:`attach` points that channel
    at a task for the duration of one call.
    """

    def __init__(self) -> None:
        self._task: Task | None = None

    @contextlib.contextmanager
    def attach(self, task: Task) -> Iterator[Task]:
        """Send this channel's callbacks to ``task`` inside the ``with`` block."""
        previous, self._task = self._task, task
        try:
            yield task
        finally:
            self._task = previous

    def tick(self, phase, amount) -> None:
        """Host side of :func:`scan_with_progress` (arrays of vmapped chains are summed)."""
        task = self._task
        if task is None:
            return
        phase = int(np.max(np.asarray(phase)))
        task.note(PHASES[phase] if 0 <= phase < len(PHASES) else str(phase))
        task.advance(int(np.sum(np.asarray(amount))))


def scan_with_progress(
    body: Callable[[Any], tuple[Any, Any]],
    init: Any,
    length: int,
    *,
    channel: ProgressChannel | None,
    phase: int,
    every: int | None = None,
    next_phase_at: int | None = None,
):
    """``jax.lax.scan`` of ``body(carry) -> (carry, out)`` that reports to ``channel``.

    Every ``every`` iterations (default: about 5% of ``length``) and at the end the host gets
    ``channel.tick(phase, n)`` with the iterations done since the last call; with
    ``next_phase_at``, reports that end after that many iterations name ``phase + 1`` (one scan
    of warmup then sampling). Without a channel it is a plain scan (nothing is compiled in).
    """
    if channel is None:
        return jax.lax.scan(lambda carry, _: body(carry), init, None, length=length)
    every = max(1, length // 20) if every is None else max(1, int(every))
    remainder = length % every

    def step(carry, i):
        carry, out = body(carry)
        done = i + 1

        def report(n):
            code = phase if next_phase_at is None else jax.numpy.where(
                done > next_phase_at, phase + 1, phase)
            jax.debug.callback(channel.tick, code, n)

        jax.lax.cond(done % every == 0, lambda: report(every), lambda: None)
        if remainder:
            jax.lax.cond(done == length, lambda: report(remainder), lambda: None)
        return carry, out

    return jax.lax.scan(step, init, jax.numpy.arange(length))


class LoopProgress:
    """The loop's bar: FLOPs spent of the budget, with queries bought and FLOPs left.

    Pass the instance as :func:`bayes_scaling.loop.run_loop`'s ``callback`` (it takes the loop's
    ``QueryEvent``); :meth:`close` when the loop ends.
    """

    def __init__(self, progress: Progress, *, budget_flops: float, flops_used: float = 0.0,
                 n_queries: int = 0) -> None:
        self._task = progress.task("queries", total=float(budget_flops), unit="FLOP",
                                   leave=True, unit_scale=True)
        self._used = float(flops_used)
        if self._used:
            self._task.advance(self._used)
        self._task.note(f"{n_queries} bought, {budget_flops - self._used:.3g} FLOPs left")

    def __call__(self, event) -> None:
        """Advance to ``event.flops_used`` and show the query count and FLOPs left."""
        step = float(event.flops_used) - self._used
        self._used = float(event.flops_used)
        self._task.note(f"{event.index} bought, {event.flops_left:.3g} FLOPs left")
        if step > 0:
            self._task.advance(step)

    def close(self) -> None:
        """Finish the bar."""
        self._task.close()

import io
import logging

import jax
import jax.numpy as jnp
import pytest

from bayes_scaling.progress import (
    NO_PROGRESS,
    LoopProgress,
    ProgressChannel,
    TqdmProgress,
    cli_progress,
    scan_with_progress,
)


class RecordingTask:
    def __init__(self):
        self.done, self.notes, self.closed = 0, [], False

    def advance(self, amount=1):
        self.done += amount

    def note(self, text):
        self.notes.append(text)

    def close(self):
        self.closed = True


class RecordingProgress:
    def __init__(self):
        self.tasks = []

    def task(self, description, total=None, *, unit="it", leave=False, unit_scale=False):
        task = RecordingTask()
        task.description, task.total = description, total
        self.tasks.append(task)
        return task


@pytest.mark.parametrize("length", [1, 37, 100])
def test_scan_with_progress_reports_every_iteration_once(length):
    channel, task = ProgressChannel(), RecordingTask()
    run = jax.jit(lambda x: scan_with_progress(lambda c: (c + 1.0, c), x, length,
                                               channel=channel, phase=1))
    with channel.attach(task):
        carry, outs = run(0.0)
        jax.block_until_ready(carry)
        jax.effects_barrier()
    assert float(carry) == length and outs.shape == (length,)
    assert task.done == length and set(task.notes) == {"sampling"}


def test_one_scan_of_warmup_then_sampling_names_both_phases():
    channel, task = ProgressChannel(), RecordingTask()
    run = jax.jit(lambda x: scan_with_progress(lambda c: (c + 1.0, c), x, 30, channel=channel,
                                               phase=0, every=5, next_phase_at=10))
    with channel.attach(task):
        jax.block_until_ready(run(0.0))
        jax.effects_barrier()
    assert task.done == 30
    assert task.notes == ["warmup"] * 2 + ["sampling"] * 4


def test_scan_with_progress_without_channel_is_a_plain_scan():
    carry, outs = scan_with_progress(lambda c: (c * 2.0, c), jnp.float32(1.0), 4,
                                     channel=None, phase=0)
    assert float(carry) == 16.0 and list(outs) == [1.0, 2.0, 4.0, 8.0]


def test_channel_without_task_drops_ticks_and_vmapped_chains_count_in_lockstep():
    channel = ProgressChannel()
    channel.tick(0, 5)  # nobody attached: nothing happens
    task = RecordingTask()
    run = jax.jit(jax.vmap(lambda x: scan_with_progress(lambda c: (c + 1.0, None), x, 40,
                                                        channel=channel, phase=0)[0]))
    with channel.attach(task):
        jax.block_until_ready(run(jnp.zeros(3)))
        jax.effects_barrier()
    assert task.done == 40 and task.notes[-1] == "warmup"


def test_loop_progress_follows_flops_and_queries():
    from types import SimpleNamespace

    progress = RecordingProgress()
    bar = LoopProgress(progress, budget_flops=1e18, flops_used=1e17, n_queries=3)
    (task,) = progress.tasks
    assert task.total == 1e18 and task.done == 1e17 and "3 bought" in task.notes[-1]
    bar(SimpleNamespace(index=4, flops_used=4e17, flops_left=6e17))
    assert task.done == pytest.approx(4e17) and task.notes[-1] == "4 bought, 6e+17 FLOPs left"
    bar(SimpleNamespace(index=4, flops_used=4e17, flops_left=6e17))  # a free repeat
    assert task.done == pytest.approx(4e17)
    bar.close()
    assert task.closed


def test_null_and_disabled_progress_draw_nothing():
    stream = io.StringIO()
    for progress in (NO_PROGRESS, TqdmProgress(enabled=False, stream=stream)):
        task = progress.task("x", total=3)
        task.advance(2)
        task.note("y")
        task.close()
    assert stream.getvalue() == ""


def test_enabled_bar_writes_to_its_stream_with_eta():
    stream = io.StringIO()
    task = TqdmProgress(enabled=True, stream=stream).task("final fit", total=10, unit="step",
                                                         leave=True)
    task.note("compiling")
    task.advance(5)
    task.close()
    text = stream.getvalue()
    assert "final fit" in text and "5/10" in text and "<" in text  # tqdm's elapsed<remaining


class FakeTty(io.StringIO):
    def isatty(self):
        return True


def test_cli_progress_is_off_when_quiet_or_not_a_terminal():
    with cli_progress(quiet=False, stream=io.StringIO()) as progress:
        assert progress.enabled is False
    with cli_progress(quiet=True, stream=FakeTty()) as progress:
        assert progress.enabled is False


def test_cli_progress_routes_log_lines_above_the_bars():
    stream = FakeTty()
    root = logging.getLogger()
    handler = logging.StreamHandler(stream)
    root.addHandler(handler)
    try:
        with cli_progress(quiet=False, stream=stream) as progress:
            assert progress.enabled
            task = progress.task("queries", total=4)
            logging.getLogger("bayes_scaling.test").warning("a log line")
            task.close()
        assert root.handlers[-1] is handler  # the redirection is undone
    finally:
        root.removeHandler(handler)
    assert "a log line\n" in stream.getvalue()


def test_fit_quiet_logs_no_steps_and_still_writes_the_report(tmp_path, caplog):
    import numpy as np

    from bayes_scaling.cli import main

    n = np.geomspace(1e7, 1e9, 10)
    rows = "".join(f"{a:.6g},{20 * a:.6g},{1.8 + 400 * a**-0.34 + 600 * (20 * a) ** -0.36:.6f}\n"
                   for a in n)
    (tmp_path / "runs.csv").write_text("n_params,n_tokens,loss\n" + rows)
    caplog.set_level(logging.DEBUG, logger="bayes_scaling")
    status = main(["fit", str(tmp_path / "runs.csv"), "--out", str(tmp_path / "out"),
                   "--num-warmup", "20", "--num-samples", "20", "--num-chains", "1",
                   "--no-figures", "--quiet"])
    assert status == 0 and (tmp_path / "out" / "report.json").is_file()
    steps = [r for r in caplog.records
             if r.name.startswith("bayes_scaling") and r.levelno < logging.WARNING]
    assert steps == []


def test_the_final_fit_bar_is_named_so_when_it_reuses_the_in_loop_sampler():
    import numpy as np

    from bayes_scaling.features import features_from_generic
    from bayes_scaling.loop import LoopConfig, default_backend

    config = LoopConfig.from_flat(num_warmup=20, num_samples=20, num_chains=1,
                                  final_num_warmup=20, final_num_samples=20,
                                  final_num_chains=1)
    progress = RecordingProgress()
    backend = default_backend(config, progress)
    n = np.geomspace(1e7, 1e9, 8)
    loss = 1.8 + 400 * n**-0.34 + 600 * (20 * n) ** -0.36
    backend.final_fit(jax.random.key(0), features_from_generic(n, 20 * n), loss)
    (task,) = progress.tasks
    assert task.description.startswith("final fit on 8 runs (1 chain x ")

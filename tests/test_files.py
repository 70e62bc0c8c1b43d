"""Every output file is written atomically and readable by others (mode 0644)."""

import stat

import pytest
from matplotlib.figure import Figure

from bayes_scaling.files import (
    FILE_MODE,
    atomic_write,
    atomic_write_lines,
    atomic_write_text,
    save_figure,
)
from bayes_scaling.runs_io import write_runs_csv


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_text_csv_and_figures_are_0644(tmp_path):
    assert FILE_MODE == 0o644
    text = atomic_write_text(tmp_path / "sub" / "a.md", "hello\n")
    assert text.read_text() == "hello\n" and _mode(text) == 0o644
    assert atomic_write_lines(tmp_path / "t.md", ["a", "b"]) == "a\nb"
    assert (tmp_path / "t.md").read_text() == "a\nb\n" and _mode(tmp_path / "t.md") == 0o644
    csv = write_runs_csv(tmp_path / "runs.csv", [{"n_params": 1e8, "loss": 3.0}])
    assert _mode(csv) == 0o644 and csv.read_text().startswith("n_params,loss")
    fig = Figure()
    fig.add_subplot().plot([0, 1], [0, 1])
    png = save_figure(fig, tmp_path / "f.png")
    assert png.read_bytes()[:4] == b"\x89PNG" and _mode(png) == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = atomic_write_text(tmp_path / "r.json", "old")

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, broken)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]

"""Smoke tests of the 2026 truth's experiment scripts with tiny settings (numbers not checked)."""

import importlib.util
from pathlib import Path

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_truth2026_anchors_smoke(tmp_path):
    out = tmp_path / "anchors.md"
    table = _load("truth2026_anchors").main(["--coarse", "--hours", "1", "--out", str(out)])
    assert "notebook run: final val loss" in table and "compute-optimal 1-h run" in table
    assert out.read_text() == table


def test_fit_truth2026_smoke(tmp_path):
    module = _load("fit_truth2026")
    out = tmp_path / "fit.json"
    record = module.main(["--coarse", "--max-nfev", "1", "--out", str(out)])
    assert set(record["fitted"]) == set(module.NAMES) and len(record["residuals"]) == 6
    assert out.exists()

"""data/: each file equals its source (the truth preset, the calibration's result file)."""

import json
import re
from pathlib import Path

import pytest

from bayes_scaling.model import PriorConfig
from bayes_scaling.simulator.truth import Truth, load_truth

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
CALIBRATION = REPO / "experiments" / "results" / "simulator_calibration.md"
DISCREPANCY = REPO / "experiments" / "results" / "discrepancy_calibration.json"


def test_default_truth_file_is_the_preset():
    assert json.loads((DATA / "truths" / "default.json").read_text()) == Truth().to_dict()
    assert load_truth(DATA / "truths" / "default.json") == Truth()


def test_refit_truth_is_the_calibrations_proposal_and_loads():
    block = re.search(r"```json\n(.*?)```", CALIBRATION.read_text(), re.S).group(1)
    refit = json.loads((DATA / "truths" / "refit.json").read_text())
    assert refit == json.loads(block)
    truth = load_truth(DATA / "truths" / "refit.json")
    assert truth.K == pytest.approx(11.050868) and truth.E == Truth().E


def test_calibration_constants_match_the_result_tables():
    sets = json.loads((DATA / "calibration_constants.json").read_text())["sets"]
    text = CALIBRATION.read_text()
    assert set(sets) == set(re.findall(r"### Set `(\w+)`", text))
    for name, constants in sets.items():
        table = text.split(f"### Set `{name}`", 1)[1]
        for key, values in constants.items():
            row = re.search(rf"^\| {key} \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", table, re.M)
            assert row is not None, key
            assert [float(v) for v in row.groups()] == [
                values["default"], values["refit_2024_ge_1e15"], values["refit_2025_ge_1e15"]
            ]
            assert values["default"] == getattr(Truth(), key)


def test_discrepancy_prior_default_is_the_calibrations_choice():
    choice = json.loads(DISCREPANCY.read_text())
    assert choice["source"] == "experiments/calibrate_discrepancy.py"
    assert PriorConfig().tau_median == choice["tau_median"]
    assert PriorConfig().tau_log_sd == choice["tau_log_sd"]

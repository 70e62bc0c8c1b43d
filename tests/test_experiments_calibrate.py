
import numpy as np

from bayes_scaling.simulator.truth import Truth
from experiment_scripts import load_script


def _load_script():
    return load_script("calibrate_simulator")


def test_calibration_runs_on_the_real_file(shared_data, tmp_path, capsys):
    script = _load_script()
    out = tmp_path / "calibration.md"
    assert script.main(["--data", str(shared_data), "--out", str(out), "--folds", "2"]) == 0
    note = out.read_text()
    assert note.startswith("# Simulator calibration")
    assert "Produced by `experiments/calibrate_simulator.py`" in note
    for label in ("2024, >= 1e15 FLOPs (fit set) | 107 |",
                  "2025, >= 1e15 FLOPs (held out) | 70 |",
                  "2024, all FLOPs | 2576 |", "2025, all FLOPs | 99 |",
                  "2-fold cross-validated", "## Proposal (not applied)", "```json"):
        assert label in note, label
    assert note in capsys.readouterr().out


def test_error_summary_and_refit_recover_a_known_truth(shared_data):
    script = _load_script()
    runs = script.load_runs(shared_data)
    assert len(runs) == 2675
    assert np.sum(runs.edition == "2025") == 99
    subset = runs.subset((runs.edition == "2024") & (runs.train_flops >= 1e15))
    exact = Truth(K=15.0, gamma=0.25, p=1.1, eta0=4e-4, chi=0.3, c_wide=0.01)
    synthetic = script.Runs(**{**subset.__dict__, "loss": script.predict(exact, subset)})
    summary = script.error_summary(exact, synthetic)
    assert summary["n"] == 107 and summary["rmse"] < 1e-12
    fitted = script.fit_truth(synthetic, Truth(), script.FIT_SETS["optimisation"])
    assert script.error_summary(fitted, synthetic)["rmse"] < 1e-4
    assert Truth() == Truth(), "the default truth is never modified"

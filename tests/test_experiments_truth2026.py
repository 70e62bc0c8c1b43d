"""Smoke tests of the 2026 experiment scripts with tiny settings (numbers not checked)."""

import json

from experiment_scripts import load_script as _load


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


def test_run2026_quality_tiny_writes_and_resumes(tmp_path):
    module = _load("run2026_quality")
    out = tmp_path / "quality.md"
    table = module.main(["--tiny", "--seeds", "0", "--out", str(out)])
    rows = [json.loads(line) for line in out.with_suffix(".rows.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and out.read_text() == table
    row = rows[0]
    assert row["regret"] == row["true_loss"] - row["best_loss"]
    assert row["seconds_charged"] <= row["budget"] and row["runs"] >= 4
    lo, hi = row["predicted"]["ci90"]
    assert row["covered90"] == (lo <= row["true_loss"] <= hi)
    assert "| 0 | 0 |" in table and "Summary over 1 runs" in table
    again = module.main(["--tiny", "--seeds", "0", "--out", str(out)])  # nothing left to run
    assert again == table
    assert len(out.with_suffix(".rows.jsonl").read_text().splitlines()) == 1
    # provenance: the row's model revision (last commit of src/ and the script), in the table
    revision = _load("pool_benchmark").model_revision(files=module.REVISION_FILES)
    assert revision != "unknown" and row["model_revision"] == revision
    assert [line for line in table.splitlines()
            if line.startswith("| 0 | 0 |")][0].endswith(f"| {revision} |")
    # a row written before revisions were recorded is still read, and says so
    out.with_suffix(".rows.jsonl").write_text(json.dumps(
        {k: v for k, v in row.items() if k != "model_revision"}) + "\n")
    old = module.main(["--tiny", "--seeds", "0", "--out", str(out)])
    assert "| unrecorded |" in old and revision not in old


def test_run2026_extrapolation_tiny_fits_observed_and_noise_free(tmp_path):
    out = tmp_path / "extrapolation.md"
    text = _load("run2026_extrapolation").main(["--tiny", "--out", str(out)])
    record = json.loads(out.with_suffix(".json").read_text())
    assert set(record["fits"]) == {
        "observed", "noise-free", "noise-free, no plateau", "noise-free, no warmup term",
        "noise-free, neither (the model before both)"} and out.read_text() == text
    assert "## noise-free losses, no plateau" in text
    before = tmp_path / "before.md"
    text = _load("run2026_extrapolation").main(["--tiny", "--loop-model", "before",
                                                "--out", str(before)])
    assert "buying its runs with the model before the 2026 terms" in text
    fits = json.loads(before.with_suffix(".json").read_text())["fits"]
    # the ablated fits cap at ln 32000: their saturation level stays near its prior there
    assert fits["noise-free, no plateau"]["law"]["l_init"] > 9.5
    for fitted in record["fits"].values():
        rows = fitted["rows"]
        assert len(rows) == 5 and all(r["err"] == r["law"] - r["truth"] for r in rows)
        assert rows[0]["u"] <= rows[3]["u"]  # the ladder climbs out of the data

import runpy
from pathlib import Path

import pytest

from bayes_scaling.model import PriorConfig

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "make_paper.py"


@pytest.fixture(scope="module")
def make_paper():
    return runpy.run_path(str(SCRIPT))


def test_includes_results_and_demotes_headings(make_paper, tmp_path):
    (tmp_path / "res").mkdir()
    (tmp_path / "res" / "a.md").write_text("# A result\n\n| x |\n|---|\n| 1.5 |\n")
    template = "# Paper\n\n{{include res/a.md}}\n\n{{prior_table}}\n\n{{include res/missing.md}}\n"
    text, missing = make_paper["build"](template, tmp_path)
    assert "### A result" in text and "| 1.5 |" in text
    assert missing == ["res/missing.md"]
    assert f"| `tau_median` | {PriorConfig().tau_median:g} |" in text
    assert "{{" not in text


def test_script_writes_the_paper_and_fails_on_missing_results(make_paper, tmp_path):
    template = tmp_path / "t.md"
    template.write_text("{{include nothing/here.md}}\n")
    out = tmp_path / "paper.md"
    assert make_paper["main"](["--template", str(template), "--out", str(out),
                               "--root", str(tmp_path)]) == 1
    assert "missing" in out.read_text()


def test_committed_paper_is_built_from_the_current_results(make_paper):
    root = SCRIPT.parents[1]
    template = (root / "paper" / "paper.template.md").read_text()
    text, missing = make_paper["build"](template, root)
    assert missing == []
    assert (root / "paper" / "paper.md").read_text() == text, (
        "paper/paper.md is stale: run python experiments/make_paper.py"
    )

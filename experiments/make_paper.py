"""Build paper/paper.md from paper/paper.template.md and the result files of the experiments.

Every number in the paper comes from a file that a script in experiments/ wrote (or, for the
prior table, from the package's own PriorConfig): the template holds prose only. Directives:
``{{include PATH}}`` inserts a result file (its headings demoted below the paper's), and
``{{prior_table}}`` renders the prior hyperparameters from ``bayes_scaling.model.PriorConfig``.

Usage: ``python experiments/make_paper.py [--template T] [--out O] [--root R]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from pathlib import Path

from bayes_scaling.model import PriorConfig

ROOT = Path(__file__).resolve().parents[1]
_DIRECTIVE = re.compile(r"^\{\{(include (?P<path>\S+)|prior_table)\}\}$", re.MULTILINE)


def prior_table() -> str:
    """The prior hyperparameters as a markdown table, read from PriorConfig's defaults."""
    rows = ["| hyperparameter | default |", "|---|---|"]
    for field in dataclasses.fields(PriorConfig):
        rows.append(f"| `{field.name}` | {field.default:g} |")
    return "\n".join(rows)


def demote(markdown: str, levels: int = 2) -> str:
    """Push every heading of an included file ``levels`` deeper (so it nests in a section)."""
    return re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) + levels) + " ", markdown,
                  flags=re.MULTILINE)


def build(template: str, root: Path) -> tuple[str, list[str]]:
    """Expand the directives of ``template``; returns the text and the missing result files."""
    missing: list[str] = []

    def expand(match: re.Match) -> str:
        if match.group("path") is None:
            return prior_table()
        path = root / match.group("path")
        if not path.is_file():
            missing.append(match.group("path"))
            return f"*(missing: `{match.group('path')}`; run the script that writes it)*"
        return demote(path.read_text().strip())

    return _DIRECTIVE.sub(expand, template), missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=ROOT / "paper" / "paper.template.md")
    parser.add_argument("--out", type=Path, default=ROOT / "paper" / "paper.md")
    parser.add_argument("--root", type=Path, default=ROOT, help="where result paths start")
    args = parser.parse_args(argv)
    text, missing = build(args.template.read_text(), args.root)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    for path in missing:
        print(f"missing result file: {path}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())

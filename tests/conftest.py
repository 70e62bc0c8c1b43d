"""Shared fixtures: the public data folder beside the checkout, and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(
    os.environ.get("BAYES_SCALING_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real public data (../shared/data); tests using it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"public data folder {SHARED_DATA} is absent (set BAYES_SCALING_SHARED_DATA)")
    return SHARED_DATA

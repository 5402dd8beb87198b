"""Shared fixtures. Real data comes from BLIS_SHARED_DATA (default ../shared/data from the project root):
tests that need it skip when it is absent, except under CI=true, where its absence is a failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path | None:
    value = os.environ.get("BLIS_SHARED_DATA", "").strip()  # empty = unset, not the current folder
    path = Path(value) if value else PROJECT_ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("BLIS_SHARED_DATA (default ../shared/data) is missing under CI=true")
        pytest.skip("shared data not available (set BLIS_SHARED_DATA)")
    return path

"""Shared fixtures: empty archives, paths to the shared real test material."""

from __future__ import annotations

from pathlib import Path

import pytest

from musicark.archive import Archive

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata"


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    arc = Archive.create(tmp_path / "archive")
    yield arc
    arc.close()


@pytest.fixture
def testdata() -> Path:
    if not TESTDATA.is_dir():
        pytest.fail(f"shared test material missing at {TESTDATA}")
    return TESTDATA

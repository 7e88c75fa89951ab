"""Shared fixtures: empty archives, paths to the shared real test material."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from musicark.archive import Archive

ROOT = Path(__file__).resolve().parents[1]
# Real third-party audio, metadata and listening data (see the README's "Tests" section).
TESTDATA = Path(os.environ.get("MUSICARK_TESTDATA") or ROOT.parent / "shared" / "testdata")
MISSING = (f"shared test material not found at {TESTDATA} "
           "(set MUSICARK_TESTDATA to where it is; README, section Tests)")


def require_testdata() -> Path:
    """The shared material's root; the test skips with one clear reason where it is absent,
    and fails instead when MUSICARK_REQUIRE_TESTDATA is set (CI must run every test)."""
    if TESTDATA.is_dir():
        return TESTDATA
    if os.environ.get("MUSICARK_REQUIRE_TESTDATA"):
        pytest.fail(MISSING)
    pytest.skip(MISSING)


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    arc = Archive.create(tmp_path / "archive")
    yield arc
    arc.close()


@pytest.fixture
def testdata() -> Path:
    return require_testdata()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Skips grouped by reason, each with its count (one line for missing material)."""
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    if reasons:
        terminalreporter.section("skipped tests, by reason")
        for reason, count in sorted(reasons.items(), key=lambda x: -x[1]):
            terminalreporter.write_line(f"{count:5d} skipped: {reason}")

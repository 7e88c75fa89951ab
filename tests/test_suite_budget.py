"""The test suite cannot hang CI: a test past its budget fails with a clear line and the
suite goes on (pytest-timeout, set in pyproject.toml); .ci/run bounds the whole suite."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HANGS = '''
import threading


def test_hangs():
    threading.Event().wait()


def test_after_it():
    assert True
'''


def test_a_hung_test_fails_and_the_suite_goes_on(tmp_path: Path) -> None:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"][
        "ini_options"]
    assert settings["timeout"] == 300
    assert settings["timeout_method"] == "signal"  # "thread" would end the whole suite
    (tmp_path / "test_hanging.py").write_text(textwrap.dedent(HANGS))
    # The project's own settings, with a budget of 2 s instead of 300 s.
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path),
                          "-o", "timeout=2", str(tmp_path / "test_hanging.py")],
                         capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Failed: Timeout (>2.0s) from pytest-timeout" in run.stdout, run.stdout
    assert "1 failed, 1 passed" in run.stdout


def test_ci_runs_the_suite_under_a_budget() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert 'timeout --kill-after=60s "$SUITE_BUDGET" make test' in script
    budget = script.split("SUITE_BUDGET:-", 1)[1].split("}", 1)[0]
    assert budget.endswith("m") and int(budget[:-1]) < 90  # CI stops a job at 90 minutes

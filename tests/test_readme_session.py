"""The README's session, run as written: every `$ musicark` line of it, in order, on a
temporary archive (a newcomer's first walk must reach a release and a served archive)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from live_server import answered, serve_process

pytestmark = pytest.mark.slow


def session_commands() -> list[str]:
    """The shell lines of the README's "A session" block, comments removed."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## A session\n.*?```text\n(.*?)```", text, re.S).group(1)
    lines = []
    for line in block.splitlines():
        if line.startswith("$ "):
            lines.append(shlex.split(line[2:], comments=True))
    return [" ".join(shlex.quote(a) for a in args) for args in lines if args]


def test_the_readme_session_runs_as_written(tmp_path: Path) -> None:
    commands = session_commands()
    assert commands[0] == ". .venv/bin/activate" and commands[-1] == "musicark serve"
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "MUSICARK_ARCHIVE"}
    env["HOME"] = str(home)
    ran = []
    for command in commands[1:]:
        args = shlex.split(command.replace("~/", f"{home}/"))
        if args[0] == "export":
            key, _, value = args[1].partition("=")
            env[key] = value
            continue
        assert args[0] == "musicark", command
        if args[1] == "serve":
            _serve_briefly(args[1:], env, home)
            ran.append(command)
            continue
        result = subprocess.run([sys.executable, "-m", "musicark", *args[1:]], cwd=home,
                                env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        ran.append(command)
    archive = home / "archive"
    torrents = sorted((archive / "releases" / "2026-11" / "torrents").glob("*.torrent"))
    assert len(torrents) >= 2  # at least one shard and the catalog snapshot
    assert any(c.startswith("musicark release create") for c in ran)


def _serve_briefly(args: list[str], env: dict[str, str], cwd: Path) -> None:
    """The README's `musicark serve`, on a port it picks itself (`--port 0`) and names."""
    server, port = serve_process(args[1:], cwd / "serve.log", cwd=cwd, env=env)
    try:
        assert b"musicark" in answered(f"http://127.0.0.1:{port}/")
    finally:
        server.terminate()
        server.wait(timeout=60)
        server.stdout.close()

"""A small archive with every kind of file musicark keeps (originals, Opus encodes, tagged
copies, restore patches, a release), shared by the fixity tests."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from archive_fixture import planned_archive
from musicark.archive import Archive
from musicark.release import ReleaseOptions, create_release


def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive with originals, Opus encodes, tagged copies, patches and a release."""
    path = planned_archive(tmp_path_factory.mktemp("bitrot-base"))
    with Archive.open(path) as archive:
        create_release(archive, "r1", ReleaseOptions(buckets="50,20,0", max_files=8))
    return path


def copy_archive(src: Path, dest: Path) -> Path:
    """A copy that keeps the release's hardlinks into the store (cp -a), as on a real disk."""
    subprocess.run(["cp", "-a", str(src), str(dest)], check=True)
    return dest


def hashes(root: Path, *, catalog: bool = False) -> dict[str, str]:
    """SHA-256 of every file of an archive but those repair may legitimately add or the
    database's own (the catalog changes with every recorded event)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or rel.startswith(("store/damaged/", "store/tmp/")):
            continue
        if rel.startswith("catalog.sqlite") and not catalog:
            continue
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def flip(path: Path) -> None:
    mode = path.stat().st_mode
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    path.chmod(mode & 0o777)


def truncate(path: Path) -> None:
    mode = path.stat().st_mode
    path.chmod(0o644)
    os.truncate(path, path.stat().st_size // 2)
    path.chmod(mode & 0o777)



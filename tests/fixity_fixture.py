"""A small archive with every kind of file musicark keeps (originals, Opus encodes, tagged
copies, restore patches, a release), shared by the fixity tests."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.derive.run import derive
from musicark.derive.tagging import tag_files
from musicark.ingest.pipeline import ingest
from musicark.plan.plans import create_plan
from musicark.release import ReleaseOptions, create_release
from musicark.synth import write_catalog
from musicark.synth_audio import write_audio

TRACKS = 3000
SEED = 11


def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive with originals, Opus encodes, tagged copies, patches and a release."""
    root = tmp_path_factory.mktemp("bitrot-base")
    catalog = root / "catalog.csv"
    write_catalog(catalog, TRACKS, seed=SEED)
    with Archive.create(root / "archive") as archive:
        import_source(archive, "table", catalog)
        music = write_audio(root / "music", 8, seed=SEED, catalog_tracks=TRACKS)
        assert ingest(archive, music, workers=2).matched == 8
        plan_id, _ = create_plan(archive, "3GB")
        assert derive(archive, plan_id, workers=2).encoded >= 1
        tag_files(archive, plan_id, workers=2)
        create_release(archive, "r1", ReleaseOptions(buckets="50,20,0", max_files=8))
    return root / "archive"


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



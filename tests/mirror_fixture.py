"""A published release and the ways tests handle a fetched copy of it (mirror tests)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from archive_fixture import planned_archive
from musicark.archive import Archive
from musicark.release import ReleaseOptions, create_release

NAME = "pub"
OPTIONS = ReleaseOptions(buckets="50,20,0", max_files=4)


def publish(root: Path, options: ReleaseOptions = OPTIONS) -> tuple[Path, Path]:
    """A publisher archive (8 matched files, originals, Opus and tagged copies with restore
    patches) and its release r1: (archive, release directory)."""
    publisher = planned_archive(root, NAME)
    with Archive.open(publisher) as archive:
        release = Path(create_release(archive, "r1", options).path)
    return publisher, release


def entries(shard: Path) -> list[dict]:
    return [json.loads(x) for x in (shard / "files.jsonl").read_text().splitlines()]


def shards(release: Path) -> list[Path]:
    return sorted((release / "shards").iterdir())


def fetched(release: Path, dest: Path) -> Path:
    """A byte copy of the release, as a BitTorrent client would leave it."""
    shutil.copytree(release, dest)
    for path in dest.rglob("*"):
        if path.is_file():
            path.chmod(0o644)
    return dest

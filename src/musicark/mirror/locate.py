"""Find what a mirror fetched: the shards (BagIt bags) under the directories given, each
with its torrent and its release, and each release's torrents.json and catalog snapshot.

A directory may be a release (`torrents.json`, `shards/`, `torrents/`, `metadata/`), its
`shards/` folder, or one shard; a BitTorrent client puts a shard wherever it saves
downloads, so a shard's torrent is looked for beside it (`<shard>.torrent`), in its
release's `torrents/`, and in `torrents/` next to the folder holding it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from musicark import trust
from musicark.errors import BadQuery
from musicark.release.schema import read_listing


@dataclass
class ReleaseDir:
    """A release as found on disk (a bare shard has none: `path` is None)."""

    name: str
    path: Path | None
    listing: list[dict] = field(default_factory=list)  # torrents.json entries, checked
    problems: list[str] = field(default_factory=list)  # bad entries, refused files

    def entry(self, shard: str) -> dict | None:
        return next((e for e in self.listing if e.get("name") == shard), None)

    def file(self, rel: str, what: str) -> Path | None:
        """A regular file at `rel` inside this release (symlinks resolved and proven
        inside); None when absent, None and a problem when refused."""
        if self.path is None:
            return None
        try:
            if not os.path.lexists(trust.inside(self.path, rel, what)):
                return None
            return trust.regular_file(self.path, rel, what)
        except trust.Refused as exc:
            self.problems.append(f"{self.path}: {exc}")
            return None

    def snapshot(self) -> tuple[Path, Path | None] | None:
        """(catalog.sqlite.zst, its torrent) of this release, if it was fetched."""
        if self.path is None:
            return None
        metadata = [e for e in self.listing if e["metadata"] and e["release"] == self.name]
        for e in metadata:
            snap = self.file(f"metadata/{e['name']}/catalog.sqlite.zst", "snapshot")
            if snap is not None:
                return snap, self.file(e["torrent"], "torrents.json: torrent")
        found = sorted(self.path.glob("metadata/*/catalog.sqlite.zst"))
        for path in found[:1]:
            snap = self.file(path.relative_to(self.path).as_posix(), "snapshot")
            torrent = self.file(f"torrents/{path.parent.name}.torrent", "metadata torrent")
            return (snap, torrent) if snap is not None else None
        return None


@dataclass
class ShardDir:
    name: str
    path: Path
    release: ReleaseDir
    torrent: Path | None
    problems: list[str] = field(default_factory=list)  # where it was found: damage
    refused: str | None = None  # not a shard to read at all (a symlink to elsewhere)


def _is_bag(path: Path) -> bool:
    return (path / "bagit.txt").is_file()


def _listing(release_dir: Path) -> tuple[str, list[dict], list[str]] | None:
    """torrents.json: (release, good entries, one line per bad entry); BadQuery when it is
    not a torrent list at all."""
    path = release_dir / "torrents.json"
    if not path.is_file() and not path.is_symlink():
        return None
    try:
        return read_listing(path)
    except trust.Refused as exc:
        raise BadQuery(f"{path} is not a torrent list: {exc}") from None


def bag_group(shard: Path) -> tuple[str, str] | None:
    """(archive, release) from bag-info.txt's Bag-Group-Identifier (`<archive> /
    <release>`); None when absent."""
    try:  # a regular file of the shard only (a symlink to /etc/... is not read)
        text = trust.read_regular(shard / "bag-info.txt", "bag-info.txt",
                                  limit=1 << 20).decode("utf-8")
    except (trust.Refused, UnicodeDecodeError):
        return None
    m = re.search(r"^Bag-Group-Identifier:\s*(.+)$", text, re.M)
    if not m:
        return None
    archive, _, release = m.group(1).strip().rpartition(" / ")
    return archive, release


def _bag_group(shard: Path) -> str | None:
    """The release a bare shard belongs to; None when its bag does not say."""
    group = bag_group(shard)
    return group[1] if group else None


def publisher_name(shards: list[ShardDir]) -> str | None:
    """The publishing archive's name, as its shards give it: a mirror that takes it names
    its own shards as the publisher did (`release create` reproduces the infohashes)."""
    for shard in shards:
        group = bag_group(shard.path)
        if group and group[0]:
            return group[0]
    return None


def _release_of(shard: Path, releases: dict[Path, ReleaseDir]) -> ReleaseDir:
    """The release a shard at `shard` belongs to: its grandparent when that is a release
    directory, else one named after the bag's group."""
    parent = shard.parent
    if parent.name == "shards" and (parent.parent / "torrents.json").is_file():
        return _release_dir(parent.parent, releases)
    group = _bag_group(shard) or "unknown"
    key = Path("/nonexistent-release") / group
    if key not in releases:
        releases[key] = ReleaseDir(group, None)
    return releases[key]


def _release_dir(path: Path, releases: dict[Path, ReleaseDir]) -> ReleaseDir:
    path = path.absolute()
    if path not in releases:
        found = _listing(path)
        name, listing, bad = found if found else (path.name, [], [])
        releases[path] = ReleaseDir(name, path, listing, bad)
    return releases[path]


def _torrent_for(shard: Path, release: ReleaseDir, problems: list[str]) -> Path | None:
    """The shard's .torrent: a regular file (never a symlink); one torrents.json names
    must be inside its release folder (a path elsewhere is a problem of the shard)."""
    candidates = [shard.parent / f"{shard.name}.torrent"]
    if release.path is not None:
        entry = release.entry(shard.name)
        if entry:
            try:
                candidates.append(trust.inside(release.path, entry["torrent"],
                                               "torrent"))
            except trust.Refused as exc:
                problems.append(f"{release.path / 'torrents.json'}: {exc}")
                return None
        candidates.append(release.path / "torrents" / f"{shard.name}.torrent")
    candidates.append(shard.parent / "torrents" / f"{shard.name}.torrent")
    candidates.append(shard.parent.parent / "torrents" / f"{shard.name}.torrent")
    return next((c for c in candidates if c.is_file() and not c.is_symlink()), None)


def _refused(shard: Path, given: Path) -> str | None:
    """Why a folder found under a directory given is not read as a shard: a symbolic link,
    or a place outside that directory (a shard that links to elsewhere would have files
    outside the release verified, linked and made read-only)."""
    try:
        trust.not_symlink_dir(shard, given, "shard folder")
    except trust.Refused as exc:
        return str(exc)
    return None


def find_shards(dirs: list[Path]) -> tuple[list[ShardDir], list[ReleaseDir]]:
    """Every shard under `dirs` (in name order, each once) and the releases they belong to.
    A release's shards that are not on disk at all are not listed here: `mirror status`
    counts them from torrents.json."""
    releases: dict[Path, ReleaseDir] = {}
    shards: dict[Path, ShardDir] = {}
    for given in dirs:
        path = Path(given).expanduser().absolute()
        if not path.is_dir():
            raise BadQuery(f"{path} is not a directory")
        if _is_bag(path):
            candidates = [path]
        elif (path / "torrents.json").is_file() or (path / "shards").is_dir():
            _release_dir(path, releases)
            candidates = sorted(p for p in (path / "shards").glob("*") if p.is_dir())
        else:
            candidates = sorted(p for p in path.iterdir() if p.is_dir() and _is_bag(p))
            if not candidates:
                raise BadQuery(f"{path} holds no release, shards/ folder or BagIt shard")
        for shard in candidates:
            if shard != path and (refused := _refused(shard, path)):
                release = _release_dir(path, releases) if (path / "shards").is_dir() \
                    else ReleaseDir("unknown", None)
                shards.setdefault(shard, ShardDir(shard.name, shard, release, None,
                                                  refused=refused))
                continue
            release = _release_of(shard, releases)
            problems: list[str] = []
            shards.setdefault(shard, ShardDir(shard.name, shard, release,
                                              _torrent_for(shard, release, problems),
                                              problems))
    ordered = sorted(shards.values(), key=lambda s: (s.release.name, s.name))
    return ordered, list(releases.values())

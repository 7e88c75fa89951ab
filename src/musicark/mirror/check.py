"""Is a fetched shard whole? The fixity check of `musicark verify --bag SHARD --torrent T`
(one read per file for the manifests and the torrent's pieces), then a verdict:

- verified: the bag and its torrent agree with every byte;
- incomplete: what fails is only what a download in progress leaves (files not there yet,
  shorter than the torrent says, client part-files, or failing pieces that are still all
  zeros, as preallocating clients leave them);
- damaged: anything else (a wrong byte, a foreign file, a bad tag file, a torrent that
  does not match the listing).
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from musicark.mirror.locate import ShardDir
from musicark.trust import Refused, inside, read_regular
from musicark.verify.report import CHECKSUM, EXTRA, INVALID, MISMATCH, MISSING, SIZE, Report
from musicark.verify.shard import validate_bag
from musicark.verify.torrent import MAX_TORRENT, BadTorrent, TorrentFiles, load_expectations

VERIFIED, INCOMPLETE, DAMAGED = "verified", "incomplete", "damaged"
PART_SUFFIXES = (".part", ".!qB", ".!ut", ".aria2", ".crdownload", ".partial")


@dataclass
class ShardCheck:
    shard: ShardDir
    state: str
    files_total: int
    files_good: int
    bytes_total: int
    bytes_good: int
    report: Report
    torrent: TorrentFiles | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def percent(self) -> float:
        return 100.0 * self.bytes_good / self.bytes_total if self.bytes_total else 0.0

    def as_dict(self) -> dict:
        return {"name": self.shard.name, "release": self.shard.release.name,
                "path": str(self.shard.path), "state": self.state,
                "files_total": self.files_total, "files_good": self.files_good,
                "bytes_total": self.bytes_total, "bytes_good": self.bytes_good,
                "percent": round(self.percent, 1), "problems": self.problems[:20]}


def _torrent(shard: ShardDir, report: Report) -> TorrentFiles | None:
    if shard.torrent is None:
        return None
    try:
        torrent = load_expectations(read_regular(shard.torrent, "torrent", limit=MAX_TORRENT))
    except (BadTorrent, OSError, Refused) as exc:
        report.add("bag", str(shard.torrent), "invalid", f"libtorrent cannot load it: {exc}")
        return None
    entry = shard.release.entry(shard.name)
    if entry is not None and entry.get("btih") and entry["btih"] != torrent.btih:
        report.add("bag", str(shard.torrent), CHECKSUM,
                   f"infohash {torrent.btih}, torrents.json says {entry['btih']}")
    return torrent


def _zero_filled_failures(path: Path, expected: bytes, piece_length: int) -> bool:
    """True when every piece of `path` that fails its v1 hash is all zeros: bytes a
    preallocating client has not written yet, not bytes that went wrong."""
    zero = bytes(piece_length)
    failed = 0
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
        for n in range(len(expected) // 20):
            piece = view[n * piece_length:(n + 1) * piece_length]
            padded = piece + bytes(piece_length - len(piece))
            if hashlib.sha1(padded).digest() == expected[n * 20:n * 20 + 20]:
                continue
            failed += 1
            if piece != zero[:len(piece)]:
                return False
    return failed > 0


def _in_progress(problem, root: Path, torrent: TorrentFiles | None) -> bool:
    path = Path(problem.path)
    if problem.kind == MISSING and (path != root / "bagit.txt"
                                    or (torrent is not None and "bagit.txt" in torrent.files)):
        return True  # (a bagit.txt its torrent has not delivered yet, too)
    if problem.kind == EXTRA and path.name.endswith(PART_SUFFIXES):
        return True
    if problem.kind == MISMATCH and path == root / "bag-info.txt" \
            and problem.detail.startswith("Payload-Oxum"):
        return True  # the files behind it are judged on their own
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        return False
    want = torrent.files.get(rel) if torrent else None
    if problem.kind == SIZE and want is not None and path.is_file():
        return path.stat().st_size < want.size
    if problem.kind == CHECKSUM and want is not None and want.pieces_v1 and path.is_file() \
            and path.stat().st_size:
        return _zero_filled_failures(path, want.pieces_v1, torrent.piece_length)
    return False


def check_shard(shard: ShardDir, *, workers: int | None = None,
                progress: Callable[[int], None] = lambda n: None) -> ShardCheck:
    """Validate one fetched shard (bag and torrent) and classify it."""
    report = Report("bag")
    if shard.refused is not None:  # never read: its files are not the release's
        report.add("bag", str(shard.path), INVALID, shard.refused)
        return ShardCheck(shard, DAMAGED, 0, 0, 0, 0, report, None, [shard.refused])
    for problem in shard.problems:  # (torrents.json naming a torrent outside the release)
        report.add("bag", str(shard.path), INVALID, problem)
    torrent = _torrent(shard, report)
    for link in _symlinks(shard.path):  # linking one into the store would follow it
        report.add("bag", str(link), INVALID, "a symbolic link: a fetched shard holds only "
                   "regular files")
    validate_bag(shard.path, torrent, workers=workers, progress=progress, report=report)
    expected = _expected_files(shard.path, torrent)
    bad = {Path(p.path) for p in report.damaged}
    total = sum(expected.values())
    good_files = [rel for rel in expected if shard.path / rel not in bad
                  and (shard.path / rel).is_file()]
    if not report.files:  # nothing was read (not a bag yet): nothing is known good
        good_files = []
    good_bytes = sum(expected[rel] for rel in good_files)
    if not report.damaged:
        state = VERIFIED
    elif all(_in_progress(p, shard.path, torrent) for p in report.damaged):
        state = INCOMPLETE
    else:
        state = DAMAGED
    return ShardCheck(shard, state, len(expected), len(good_files), total, good_bytes, report,
                      torrent, [p.line() for p in report.damaged])


def _symlinks(root: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        found += [Path(dirpath, n) for n in dirnames + filenames if Path(dirpath, n).is_symlink()]
    return found


def _expected_files(root: Path, torrent: TorrentFiles | None) -> dict[str, int]:
    """Every file the shard should hold and its size: from the torrent, else the manifests
    (sizes as found, a bag records none)."""
    if torrent is not None:
        return {rel: e.size for rel, e in torrent.files.items()}
    out: dict[str, int] = {}
    for manifest in ("manifest-sha256.txt", "tagmanifest-sha256.txt"):
        try:
            lines = (root / manifest).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for line in lines:
            parts = line.split(None, 1)
            if len(parts) != 2:
                continue
            try:  # (an unsafe path is reported by the bag check; never looked at here)
                path = inside(root, parts[1], manifest)
            except Refused:
                continue
            out[parts[1]] = path.lstat().st_size if path.is_file() and not path.is_symlink() \
                else 0
    return out

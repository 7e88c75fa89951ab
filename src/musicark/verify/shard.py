"""A bag checked in one read pass per file: every manifest algorithm, and when the bag is a
musicark shard with its torrent, the torrent's v1 pieces and v2 roots too; then files.jsonl
against the manifests. Reading fans out to worker processes (or Dask) in batches."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from musicark.runner import fan_out
from musicark.verify.bag import BagLayout, check_checksums, inspect_bag
from musicark.verify.readpass import Digests, read_digests
from musicark.verify.report import EXTRA, INVALID, MISMATCH, MISSING, UNREADABLE, Report
from musicark.verify.torrent import TorrentFiles, compare

BATCH_BYTES = 64 << 20
INLINE_BYTES = 64 << 20  # below this, hashing stays in this process (no pool start-up)


def digest_batch(root: str, items: list[tuple[str, tuple[str, ...], int | None]]
                 ) -> list[tuple[str, Digests | None, str | None]]:
    """Worker task: one read pass per file; [(rel, digests, error)]."""
    out = []
    for rel, algorithms, piece in items:
        try:
            out.append((rel, read_digests(Path(root, rel), algorithms, piece), None))
        except OSError as exc:
            out.append((rel, None, exc.strerror or str(exc)))
    return out


def _jobs(layout: BagLayout, torrent: TorrentFiles | None
          ) -> list[tuple[str, tuple[str, ...], int | None]]:
    jobs = []
    for rel in sorted({**layout.payload, **layout.tags}):
        algorithms = layout.algorithms_for(rel)
        piece = torrent.piece_length if torrent and rel in torrent.files else None
        if algorithms or piece:
            jobs.append((rel, algorithms, piece))
    return jobs


def _batches(layout: BagLayout, jobs: list) -> Iterator[tuple]:
    sizes = {**layout.payload, **layout.tags}
    batch, nbytes = [], 0
    for job in jobs:
        batch.append(job)
        nbytes += sizes[job[0]]
        if nbytes >= BATCH_BYTES:
            yield (str(layout.root), batch)
            batch, nbytes = [], 0
    if batch:
        yield (str(layout.root), batch)


def validate_bag(root: Path, torrent: TorrentFiles | None = None, *,
                 workers: int | None = None, dask: str | object | None = None,
                 progress: Callable[[int], None] = lambda nbytes: None,
                 report: Report | None = None) -> Report:
    """Validate the bag at `root` (and, given its torrent, every file against it)."""
    began = time.monotonic()
    report = report if report is not None else Report("bag")
    layout = inspect_bag(Path(root), report)
    if layout is None:
        return report
    if torrent is not None:
        on_disk = {**layout.payload, **layout.tags}
        for rel in sorted(set(torrent.files) - set(on_disk)):
            report.add("bag", layout.name(rel), MISSING, "in the torrent, not on disk")
        for rel in sorted(set(on_disk) - set(torrent.files)):
            report.add("bag", layout.name(rel), EXTRA, "on disk, not in the torrent")
    jobs = _jobs(layout, torrent)
    total = sum({**layout.payload, **layout.tags}[j[0]] for j in jobs)
    if dask is None and total < INLINE_BYTES:
        workers = 1
    for results in fan_out(digest_batch, _batches(layout, jobs), workers=workers, dask=dask):
        for rel, digests, error in results:
            report.files += 1
            if digests is None:
                report.add("bag", layout.name(rel), UNREADABLE, f"cannot read: {error}")
                continue
            report.bytes += digests.size
            progress(digests.size)
            check_checksums(layout, rel, digests.hexdigests, report)
            if torrent is not None and rel in torrent.files:
                for kind, detail in compare(torrent.files[rel], digests, torrent.piece_length):
                    report.add("bag", layout.name(rel), kind, detail)
    if "files.jsonl" in layout.tags:
        check_files_jsonl(layout, report)
    report.seconds += time.monotonic() - began
    dedupe(report)
    return report


def check_files_jsonl(layout: BagLayout, report: Report) -> None:
    """musicark's files.jsonl must describe exactly the payload the SHA-256 manifest lists,
    and name each restore patch with the checksum the tag manifest holds for it."""
    name = layout.name("files.jsonl")
    manifest = layout.manifests.get("sha256", {})
    tags = layout.tag_manifests.get("sha256", {})
    seen: set[str] = set()
    try:
        lines = (layout.root / "files.jsonl").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        report.add("bag", name, INVALID, f"cannot read: {exc}")
        return
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
            path, sha = entry["path"], entry["sha256"]
        except (ValueError, KeyError, TypeError) as exc:
            report.add("bag", name, INVALID, f"line {number} is not a file record: {exc}")
            continue
        seen.add(path)
        if manifest and manifest.get(path) != sha:
            said = manifest.get(path)
            report.add("bag", name, MISMATCH,
                       f"line {number}: {path} has sha256 {sha}, manifest-sha256.txt "
                       + (f"says {said}" if said else "does not list it"))
        restore = entry.get("restore") or {}
        if restore and tags and tags.get(restore.get("patch")) != restore.get("patch_sha256"):
            report.add("bag", name, MISMATCH,
                       f"line {number}: restore patch {restore.get('patch')} has sha256 "
                       f"{restore.get('patch_sha256')}, tagmanifest-sha256.txt says "
                       f"{tags.get(restore.get('patch'))}")
    for path in sorted(set(manifest) - seen):
        report.add("bag", name, MISMATCH, f"{path} is in manifest-sha256.txt, not in files.jsonl")


def dedupe(report: Report) -> None:
    seen, kept = set(), []
    for p in report.problems:
        key = (p.path, p.kind, p.detail)
        if key not in seen:
            seen.add(key)
            kept.append(p)
    report.problems = kept

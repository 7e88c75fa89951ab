"""A bag checked in one read pass per file: every manifest algorithm, and when the bag is a
musicark shard with its torrent, the torrent's v1 pieces and v2 roots too; then files.jsonl
against the manifests. Reading fans out to worker processes (or Dask) in batches."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

from musicark.release.schema import read_jsonl
from musicark.runner import fan_out
from musicark.trust import Refused
from musicark.verify.bag import BagLayout, check_checksums, inspect_bag
from musicark.verify.readpass import Digests, read_digests
from musicark.verify.report import CHECKSUM, EXTRA, INVALID, MISMATCH, MISSING, UNREADABLE, Report
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
    # A musicark shard's files.jsonl names every payload file and patch by SHA-256: each is
    # hashed with SHA-256 whatever manifests the bag has, so that name is checked against
    # the bytes (a bag with only manifest-sha512.txt would leave it unchecked).
    sha256 = ("sha256",) if "files.jsonl" in layout.tags else ()
    jobs = []
    for rel in sorted({**layout.payload, **layout.tags}):
        algorithms = tuple(sorted({*layout.algorithms_for(rel), *sha256}))
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
    sha256: dict[str, str] = {}  # rel → the SHA-256 of the bytes read
    for results in fan_out(digest_batch, _batches(layout, jobs), workers=workers, dask=dask):
        for rel, digests, error in results:
            report.files += 1
            if digests is None:
                report.add("bag", layout.name(rel), UNREADABLE, f"cannot read: {error}")
                continue
            if "sha256" in digests.hexdigests:
                sha256[rel] = digests.hexdigests["sha256"]
            report.bytes += digests.size
            progress(digests.size)
            check_checksums(layout, rel, digests.hexdigests, report)
            if torrent is not None and rel in torrent.files:
                for kind, detail in compare(torrent.files[rel], digests, torrent.piece_length):
                    report.add("bag", layout.name(rel), kind, detail)
    if "files.jsonl" in layout.tags:
        check_files_jsonl(layout, report, sha256)
    report.seconds += time.monotonic() - began
    dedupe(report)
    return report


def check_files_jsonl(layout: BagLayout, report: Report, read: dict[str, str] | None = None
                      ) -> None:
    """musicark's files.jsonl: every line a well-formed file record (`release.schema`),
    describing exactly the payload the SHA-256 manifest lists, each file and restore patch
    named by the SHA-256 of its bytes as read (`read`: rel → digest) and as the manifests
    hold it."""
    name = layout.name("files.jsonl")
    manifest = layout.manifests.get("sha256", {})
    tags = layout.tag_manifests.get("sha256", {})
    read = read if read is not None else {}
    seen: set[str] = set()
    try:
        records = list(read_jsonl(layout.root / "files.jsonl"))
    except Refused as exc:
        report.add("bag", name, INVALID, f"cannot read: {exc}")
        return
    for number, entry, reason in records:
        if entry is None:
            report.add("bag", name, INVALID, f"{reason} (not a file record)")
            continue
        path, sha = entry["path"], entry["sha256"]
        seen.add(path)
        for rel, want, what in _named(entry):
            if rel not in layout.payload and rel not in layout.tags:
                if rel not in layout.irregular:  # (an irregular file is reported already)
                    report.add("bag", layout.name(rel), MISSING,
                               f"{what} named by files.jsonl line {number}, not on disk")
            elif rel in read and read[rel] != want and {**manifest, **tags}.get(rel) != want:
                # (where a SHA-256 manifest says the same, its check has reported it)
                report.add("bag", layout.name(rel), CHECKSUM, f"sha256 is {read[rel]}, "
                           f"files.jsonl line {number} says {want}", want)
        if manifest and manifest.get(path) != sha:
            said = manifest.get(path)
            report.add("bag", name, MISMATCH,
                       f"line {number}: {path} has sha256 {sha}, manifest-sha256.txt "
                       + (f"says {said}" if said else "does not list it"))
        restore = entry["restore"]
        if restore and tags and tags.get(restore["patch"]) != restore["patch_sha256"]:
            report.add("bag", name, MISMATCH,
                       f"line {number}: restore patch {restore['patch']} has sha256 "
                       f"{restore['patch_sha256']}, tagmanifest-sha256.txt says "
                       f"{tags.get(restore['patch'])}")
    for path in sorted(set(manifest) - seen):
        report.add("bag", name, MISMATCH, f"{path} is in manifest-sha256.txt, not in files.jsonl")


def _named(entry: dict) -> list[tuple[str, str, str]]:
    """(file, the SHA-256 files.jsonl gives it, what it is) for a record's payload file and
    restore patch."""
    named = [(entry["path"], entry["sha256"], "payload file")]
    if entry["restore"]:
        named.append((entry["restore"]["patch"], entry["restore"]["patch_sha256"],
                      "restore patch"))
    return named


def dedupe(report: Report) -> None:
    seen, kept = set(), []
    for p in report.problems:
        key = (p.path, p.kind, p.detail)
        if key not in seen:
            seen.add(key)
            kept.append(p)
    report.problems = kept

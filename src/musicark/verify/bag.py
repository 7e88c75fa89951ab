"""BagIt (RFC 8493) validation of any bag: structure, Payload-Oxum, every payload and tag
manifest in every algorithm, files on disk no manifest lists, entries with no file, files
fetch.txt says to fetch.

The structure is read first without hashing (`inspect_bag`); then each file is read once for
all the algorithms that list it (and, for a shard, its torrent's pieces: `musicark.verify.
shard`). Messages name the file and the problem; paths are shown decoded (RFC 8493 encodes
CR, LF and % in manifests). docs/fixity.md has the rules, section by section.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from musicark.verify.bagfetch import Fetch, read_fetch
from musicark.verify.bagtags import oxum, read_declaration, read_info
from musicark.verify.bagtext import (
    clean_path,
    decode_path,
    is_junk,
    look_alikes,
    not_text,
    stray_percent,
    tag_lines,
)
from musicark.verify.report import (
    CHECKSUM,
    EXTRA,
    INCOMPLETE,
    INVALID,
    MISMATCH,
    MISSING,
    UNREADABLE,
    UNSUPPORTED,
    WARNING,
    Report,
)

__all__ = ["BagLayout", "check_checksums", "decode_path", "inspect_bag"]

_LINE = re.compile(r"([^ \t]+)[ \t]+(.+)")
_HEX = re.compile(r"[0-9A-Fa-f]+")
WEAK = frozenset({"md5", "sha1"})  # RFC 8493 2.4: sha256 and sha512 are the ones to have


@dataclass
class BagLayout:
    root: Path
    version: str = ""
    encoding: str = "utf-8"
    info: dict[str, list[str]] = field(default_factory=dict)
    manifests: dict[str, dict[str, str]] = field(default_factory=dict)  # alg → rel → hex
    tag_manifests: dict[str, dict[str, str]] = field(default_factory=dict)
    payload: dict[str, int] = field(default_factory=dict)  # rel → size, as found in data/
    tags: dict[str, int] = field(default_factory=dict)  # every other file of the bag
    irregular: set[str] = field(default_factory=set)  # symlinks, FIFOs...: reported, unread
    fetch: dict[str, Fetch] = field(default_factory=dict)  # fetch.txt: rel → where from
    holes: set[str] = field(default_factory=set)  # fetch.txt files the bag does not hold
    junk: set[str] = field(default_factory=set)  # unlisted .DS_Store, Thumbs.db...: ignored

    def name(self, rel: str) -> str:
        return str(self.root / rel)

    def algorithms_for(self, rel: str) -> tuple[str, ...]:
        lists = self.manifests if rel.startswith("data/") else self.tag_manifests
        return tuple(sorted(a for a, entries in lists.items() if rel in entries))

    @property
    def old(self) -> bool:
        """A bag older than BagIt 1.0 (looser whitespace; one manifest per file sufficed)."""
        m = re.fullmatch(r"(\d+)\.(\d+)", self.version)
        return bool(m) and (int(m.group(1)), int(m.group(2))) < (1, 0)


def _walk(root: Path, report: Report) -> tuple[dict[str, int], dict[str, int], set[str]]:
    """Regular files by place (payload or tag), and the paths of everything else: a symlink
    (it may point outside the bag, at /dev/zero or at a directory), a FIFO (reading it would
    block forever), a device. Those are reported, never followed or read; so is a folder
    that cannot be listed (os.walk would skip it in silence)."""
    payload, tags, irregular = {}, {}, set()

    def unlisted(exc: OSError) -> None:
        report.add("bag", str(exc.filename), UNREADABLE,
                   f"cannot list this folder: {exc.strerror or exc} (its files are not checked)")

    for dirpath, dirnames, filenames in os.walk(root, onerror=unlisted):
        dirnames.sort()
        for name in sorted(filenames) + [d for d in dirnames if Path(dirpath, d).is_symlink()]:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            info = path.lstat()
            if stat.S_ISREG(info.st_mode):
                (payload if rel.startswith("data/") else tags)[rel] = info.st_size
                continue
            irregular.add(rel)
            what = (f"a symbolic link (to {os.readlink(path)!r})" if stat.S_ISLNK(info.st_mode)
                    else "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device or socket")
            report.add("bag", str(path), INVALID,
                       f"{what}, not a regular file: a bag holds files (not read)")
    return payload, tags, irregular


def _parse_manifest(layout: BagLayout, rel: str, algorithm: str, report: Report,
                    payload: bool) -> dict[str, str]:
    """One manifest (2.1.3, 2.2.1): '<checksum> <path>' lines, paths decoded, normalised
    and proven inside the bag (or inside data/ for a payload manifest)."""
    entries: dict[str, str] = {}
    where = layout.name(rel)
    width = hashlib.new(algorithm).digest_size * 2
    strays = 0
    try:
        for number, line in tag_lines(layout.root / rel, layout.encoding):
            if line is None:
                report.add("bag", where, INVALID, f"line {number} is longer than any path "
                           "could be (not read)")
                continue
            if number == 1 and line.startswith("\ufeff"):
                report.add("bag", where, WARNING, "starts with a byte order mark (read past it)")
                line = line[1:]
            if not line.strip():
                continue
            m = _LINE.fullmatch(line)
            if not m:
                report.add("bag", where, INVALID,
                           f"line {number} is not '<checksum> <path>': {line[:80]!r}")
                continue
            checksum, raw = m.group(1), m.group(2)
            path, unsafe = clean_path(raw)
            problem = (
                f"{checksum[:80]!r} is not a {algorithm} checksum ({width} hex digits)"
                if len(checksum) != width or not _HEX.fullmatch(checksum)
                else f"unsafe path {decode_path(raw)[:200]!r}: {unsafe}" if unsafe
                else f"{path!r} is not under data/ (a payload manifest lists only payload "
                     "files, RFC 8493 2.1.3)" if payload and not path.startswith("data/")
                else f"{path!r} is a payload file (a tag manifest lists only tag files, "
                     "RFC 8493 2.2.1)" if not payload and path.startswith("data/")
                else f"{path!r} is a tag manifest (RFC 8493 2.2.1: a tag manifest MUST NOT "
                     "list one)" if not payload and path.startswith("tagmanifest-")
                else None)
            if problem:
                report.add("bag", where, INVALID, f"line {number}: {problem}")
                continue
            strays += "%" in raw and stray_percent(raw)
            checksum = checksum.lower()
            if path in entries:
                same = entries[path] == checksum
                report.add("bag", where, WARNING if same else INVALID,
                           f"line {number}: {path!r} is listed twice"
                           + (" (same checksum)" if same else " with different checksums"))
                if not same:
                    continue
            entries[path] = checksum
    except UnicodeError as exc:
        report.add("bag", where, INVALID, not_text(layout.encoding, exc))
    except OSError as exc:
        report.add("bag", where, UNREADABLE, f"cannot read: {exc.strerror or exc}")
    if strays:
        report.add("bag", where, WARNING, f"{strays:,} paths hold a '%' not written as %25 "
                   "(RFC 8493 2.1.3); read as a literal '%'")
    return entries


def inspect_bag(root: Path, report: Report) -> BagLayout | None:
    """Everything that needs no hashing; None when `root` is not a bag at all."""
    root = Path(root)
    layout = BagLayout(root)
    if not root.is_dir():
        report.add("bag", str(root), MISSING, "no such directory")
        return None
    if not (root / "bagit.txt").is_file() and not (root / "bagit.txt").is_symlink():
        report.add("bag", layout.name("bagit.txt"), MISSING,
                   "bagit.txt is missing: not a BagIt bag")
        return None
    layout.payload, layout.tags, layout.irregular = _walk(root, report)

    def say(rel: str):
        return lambda kind, detail: report.add("bag", layout.name(rel), kind, detail)

    if "bagit.txt" in layout.tags:  # a symlink (to /etc/passwd...) is reported, never read
        declared = read_declaration(root / "bagit.txt", say("bagit.txt"))
        if declared:
            layout.version, layout.encoding = declared
    if not (root / "data").is_dir() or (root / "data").is_symlink():
        report.add("bag", layout.name("data"), MISSING, "the payload directory data/ is missing")
    if "bag-info.txt" in layout.tags:
        layout.info = read_info(root / "bag-info.txt", layout.encoding, layout.old,
                                say("bag-info.txt"))
    for rel in sorted(layout.tags, key=lambda r: (r != r.lower(), r)):  # lowercase first
        m = re.fullmatch(r"(tag)?manifest-([A-Za-z0-9]+)\.txt", rel)
        if not m:
            continue
        algorithm = m.group(2).lower()
        try:  # listed by hashlib is not always usable (an OpenSSL without ripemd160)
            hashlib.new(algorithm)
        except ValueError:
            report.add("bag", layout.name(rel), UNSUPPORTED,
                       f"unknown checksum algorithm {algorithm!r}")
            continue
        target = layout.tag_manifests if m.group(1) else layout.manifests
        if algorithm in target:  # manifest-SHA256.txt beside manifest-sha256.txt
            report.add("bag", layout.name(rel), INVALID,
                       f"a second {m.group(1) or ''}manifest for {algorithm} (not read)")
            continue
        target[algorithm] = _parse_manifest(layout, rel, algorithm, report,
                                            payload=not m.group(1))
    if not layout.manifests:
        report.add("bag", layout.name("manifest-sha256.txt"), MISSING,
                   "no payload manifest (manifest-<algorithm>.txt)")
    elif set(layout.manifests) <= WEAK:
        report.add("bag", layout.name(f"manifest-{min(layout.manifests)}.txt"), WARNING,
                   f"only {' and '.join(sorted(layout.manifests))} checksums: they do not "
                   "stand up to deliberate change (RFC 8493 2.4: use sha256 or sha512)")
    if "fetch.txt" in layout.tags:
        layout.fetch = read_fetch(root / "fetch.txt", layout.encoding, layout.manifests,
                                  say("fetch.txt"))
    _match_normalization(layout, report)
    _completeness(layout, report)
    _tag_completeness(layout, report)
    _check_oxum(layout, report)
    for a, b, how in look_alikes(layout.payload):
        report.add("bag", layout.name(b), WARNING, f"differs from {a!r} only by {how}: "
                   "one file on macOS or Windows, so the bag cannot be unpacked there whole")
    return layout


def _match_normalization(layout: BagLayout, report: Report) -> None:
    """A manifest name that is on disk only in another Unicode normalization form (a bag
    copied through macOS) is that file, as bagit-python also takes it: warned, then checked."""
    listed = {rel for entries in layout.manifests.values() for rel in entries}
    unlisted = {unicodedata.normalize("NFC", rel): rel for rel in layout.payload
                if rel not in listed}
    for rel in sorted(listed - set(layout.payload)):
        disk = unlisted.get(unicodedata.normalize("NFC", rel))
        if disk is None:
            continue
        report.add("bag", layout.name(disk), WARNING, f"listed as {rel!r}, a different "
                   "Unicode normalization of the same name: checked as that file")
        for entries in layout.manifests.values():
            if rel in entries:
                entries[disk] = entries.pop(rel)


def _completeness(layout: BagLayout, report: Report) -> None:
    """RFC 8493 3: every manifest entry present (or owed by fetch.txt), every payload file
    in every payload manifest (in at least one, before BagIt 1.0)."""
    listed = {rel for entries in layout.manifests.values() for rel in entries}
    layout.junk = {rel for rel in layout.payload if rel not in listed and is_junk(rel)}
    for rel in sorted(layout.junk):
        report.add("bag", layout.name(rel), WARNING, "operating system litter (Finder, "
                   "Explorer) in no manifest: not part of the bag, ignored; delete it")
    for algorithm, entries in layout.manifests.items():
        manifest = f"manifest-{algorithm}.txt"
        for rel in sorted(set(entries) - set(layout.payload) - layout.irregular):
            if rel in layout.fetch:
                layout.holes.add(rel)
            elif stat.S_ISDIR(_mode(layout.root / rel)):
                report.add("bag", layout.name(rel), INVALID, f"{manifest} lists a directory "
                           "(RFC 8493 2.1.3: manifests list files)")
            else:
                report.add("bag", layout.name(rel), MISSING, f"listed in {manifest}, not on disk")
        unlisted = set(layout.payload) - set(entries) - layout.junk
        for rel in sorted(unlisted - (listed if layout.old else set())):
            report.add("bag", layout.name(rel), EXTRA, f"payload file not listed in {manifest}")
    for rel in sorted(layout.holes):
        want = layout.fetch[rel]
        size = "length unknown" if want.length is None else f"{want.length:,} bytes"
        report.add("bag", layout.name(rel), INCOMPLETE,
                   f"not in the bag yet: fetch.txt says to fetch {want.url} ({size})")
    for rel, want in sorted(layout.fetch.items()):
        if rel in layout.payload and want.length not in (None, layout.payload[rel]):
            report.add("bag", layout.name(rel), MISMATCH, f"fetch.txt says {want.length:,} "
                       f"bytes, the file has {layout.payload[rel]:,}")
    if layout.holes:
        report.notes["fetch"] = [layout.fetch[rel].as_dict() for rel in sorted(layout.holes)]


def _mode(path: Path) -> int:
    try:
        return path.lstat().st_mode
    except (OSError, ValueError):
        return 0


def _tag_completeness(layout: BagLayout, report: Report) -> None:
    """RFC 8493 2.2.1: tag manifest entries present; every tag manifest SHOULD list the
    same tag files, and every tag file but the tag manifests."""
    listed: set[str] = set()
    sets = {}
    for algorithm, entries in layout.tag_manifests.items():
        listed.update(entries)
        sets[algorithm] = set(entries)
        for rel in sorted(set(entries) - set(layout.tags) - layout.irregular):
            report.add("bag", layout.name(rel), MISSING,
                       f"listed in tagmanifest-{algorithm}.txt, not on disk")
    if len({frozenset(s) for s in sets.values()}) > 1:
        report.add("bag", layout.name(f"tagmanifest-{min(sets)}.txt"), WARNING,
                   f"the tag manifests ({', '.join(sorted(sets))}) list different tag files "
                   "(RFC 8493 2.2.1: they SHOULD list the same)")
    if layout.tag_manifests:
        for rel in sorted(set(layout.tags) - listed):
            if not rel.startswith("tagmanifest-"):
                report.add("bag", layout.name(rel), WARNING,
                           "tag file not listed in any tag manifest (not checked)")


def _check_oxum(layout: BagLayout, report: Report) -> None:
    """Payload-Oxum against data/ (litter aside); a holey bag is judged once complete."""
    found = oxum(layout.info, lambda kind, detail: report.add(
        "bag", layout.name("bag-info.txt"), kind, detail))
    if found is None or layout.holes:
        return
    octets, count = found
    sizes = [size for rel, size in layout.payload.items() if rel not in layout.junk]
    if (octets, count) != (sum(sizes), len(sizes)):
        report.add("bag", layout.name("bag-info.txt"), MISMATCH,
                   f"Payload-Oxum says {octets:,} bytes in {count:,} files; data/ holds "
                   f"{sum(sizes):,} bytes in {len(sizes):,} files")


def check_checksums(layout: BagLayout, rel: str, hexdigests: dict[str, str],
                    report: Report) -> bool:
    """Compare one file's digests with every manifest that lists it; True when all agree."""
    lists = layout.manifests if rel.startswith("data/") else layout.tag_manifests
    good = True
    for algorithm, entries in sorted(lists.items()):
        want = entries.get(rel)
        if want is None or algorithm not in hexdigests:
            continue
        if hexdigests[algorithm] != want:
            kind = "tagmanifest" if lists is layout.tag_manifests else "manifest"
            report.add("bag", layout.name(rel), CHECKSUM,
                       f"{algorithm} is {hexdigests[algorithm]}, {kind}-{algorithm}.txt says "
                       f"{want}", want if algorithm == "sha256" else None)
            good = False
    return good

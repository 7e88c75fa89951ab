"""BagIt (RFC 8493) validation of any bag: structure, Payload-Oxum, every payload and tag
manifest in every algorithm, files on disk no manifest lists, entries with no file.

The structure is read first without hashing (`inspect_bag`); then each file is read once for
all the algorithms that list it (and, for a shard, its torrent's pieces: `musicark.verify.
shard`). Messages name the file and the problem; paths are shown decoded (RFC 8493 encodes
CR, LF and % in manifests).
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from musicark.verify.report import (
    CHECKSUM,
    EXTRA,
    INVALID,
    MISMATCH,
    MISSING,
    UNSUPPORTED,
    WARNING,
    Report,
)

_LINE = re.compile(r"(\S+)[ \t]+(.+)")
_ENCODED = re.compile(r"%(0[AaDd]|25)")


def decode_path(text: str) -> str:
    return _ENCODED.sub(lambda m: chr(int(m.group(1), 16)), text)


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

    def name(self, rel: str) -> str:
        return str(self.root / rel)

    def algorithms_for(self, rel: str) -> tuple[str, ...]:
        lists = self.manifests if rel.startswith("data/") else self.tag_manifests
        return tuple(sorted(a for a, entries in lists.items() if rel in entries))


def _walk(root: Path, report: Report) -> tuple[dict[str, int], dict[str, int], set[str]]:
    """Regular files by place (payload or tag), and the paths of everything else: a symlink
    (it may point outside the bag, at /dev/zero or at a directory), a FIFO (reading it would
    block forever), a device. Those are reported, never followed or read."""
    payload, tags, irregular = {}, {}, set()
    for dirpath, dirnames, filenames in os.walk(root):
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


def _read_tag_text(layout: BagLayout, rel: str, report: Report) -> str | None:
    try:
        return (layout.root / rel).read_bytes().decode(layout.encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        report.add("bag", layout.name(rel), INVALID, f"not {layout.encoding} text: {exc}")
    except OSError as exc:
        report.add("bag", layout.name(rel), MISSING, f"cannot read: {exc.strerror or exc}")
    return None


def _parse_manifest(layout: BagLayout, rel: str, report: Report, payload: bool
                    ) -> dict[str, str]:
    text = _read_tag_text(layout, rel, report)
    entries: dict[str, str] = {}
    if text is None:
        return entries
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _LINE.fullmatch(line.rstrip("\r\n"))
        if not m:
            report.add("bag", layout.name(rel), INVALID,
                       f"line {number} is not '<checksum> <path>': {line[:80]!r}")
            continue
        checksum, path = m.group(1).lower(), decode_path(m.group(2))
        parts = path.split("/")
        if path.startswith("/") or ".." in parts or "" in parts:
            report.add("bag", layout.name(rel), INVALID,
                       f"line {number}: unsafe path {path!r} (outside the bag)")
            continue
        if payload and not path.startswith("data/"):
            report.add("bag", layout.name(rel), INVALID,
                       f"line {number}: {path!r} is not under data/")
            continue
        if path in entries:
            report.add("bag", layout.name(rel), INVALID, f"line {number}: {path!r} listed twice")
        entries[path] = checksum
    return entries


def inspect_bag(root: Path, report: Report) -> BagLayout | None:
    """Everything that needs no hashing; None when `root` is not a bag at all."""
    root = Path(root)
    layout = BagLayout(root)
    if not root.is_dir():
        report.add("bag", str(root), MISSING, "no such directory")
        return None
    declaration = root / "bagit.txt"
    if not declaration.is_file():
        report.add("bag", str(declaration), MISSING, "bagit.txt is missing: not a BagIt bag")
        return None
    layout.payload, layout.tags, layout.irregular = _walk(root, report)
    if "bagit.txt" in layout.tags:  # a symlink (to /etc/passwd...) is reported, never read
        _bagit_txt(layout, report)
    if not (root / "data").is_dir():
        report.add("bag", layout.name("data"), MISSING, "the payload directory data/ is missing")
    if "bag-info.txt" in layout.tags:
        _bag_info(layout, report)
    for rel in sorted(layout.tags):
        m = re.fullmatch(r"(tag)?manifest-([A-Za-z0-9]+)\.txt", rel)
        if not m:
            continue
        algorithm = m.group(2).lower()
        if algorithm not in hashlib.algorithms_available:
            report.add("bag", layout.name(rel), UNSUPPORTED,
                       f"unknown checksum algorithm {algorithm!r}")
            continue
        target = layout.tag_manifests if m.group(1) else layout.manifests
        target[algorithm] = _parse_manifest(layout, rel, report, payload=not m.group(1))
    if not layout.manifests:
        report.add("bag", layout.name("manifest-sha256.txt"), MISSING,
                   "no payload manifest (manifest-<algorithm>.txt)")
    if "fetch.txt" in layout.tags:
        text = _read_tag_text(layout, "fetch.txt", report) or ""
        remote = sum(1 for line in text.splitlines() if line.strip())
        report.add("bag", layout.name("fetch.txt"), UNSUPPORTED,
                   f"fetch.txt is not supported: {remote} remote files")
    _completeness(layout, report)
    return layout


def _bagit_txt(layout: BagLayout, report: Report) -> None:
    rel = "bagit.txt"
    try:
        text = (layout.root / rel).read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        report.add("bag", layout.name(rel), INVALID, "not UTF-8 text")
        return
    fields = dict(line.split(":", 1) for line in text.lstrip("\ufeff").splitlines()
                  if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    version = fields.get("BagIt-Version", "")
    if not re.fullmatch(r"\d+\.\d+", version):
        report.add("bag", layout.name(rel), INVALID,
                   f"BagIt-Version is missing or malformed ({version!r})")
    if "Tag-File-Character-Encoding" not in fields:
        report.add("bag", layout.name(rel), INVALID, "Tag-File-Character-Encoding is missing")
    layout.version = version
    encoding = fields.get("Tag-File-Character-Encoding", "UTF-8")
    try:
        layout.encoding = codecs.lookup(encoding).name
    except LookupError:
        report.add("bag", layout.name(rel), UNSUPPORTED, f"unknown encoding {encoding!r}")


def _bag_info(layout: BagLayout, report: Report) -> None:
    text = _read_tag_text(layout, "bag-info.txt", report) or ""
    key = None
    for number, line in enumerate(text.splitlines(), 1):
        if line[:1] in (" ", "\t") and key is not None:  # a folded continuation line
            layout.info[key][-1] += " " + line.strip()
        elif ":" in line:
            key, value = (s.strip() for s in line.split(":", 1))
            layout.info.setdefault(key, []).append(value)
        elif line.strip():
            report.add("bag", layout.name("bag-info.txt"), INVALID,
                       f"line {number} is not 'Label: value': {line[:80]!r}")
    oxum = layout.info.get("Payload-Oxum")
    if oxum:
        m = re.fullmatch(r"(\d{1,20})\.(\d{1,20})", oxum[0])  # past 20 digits: absurd
        if not m:
            report.add("bag", layout.name("bag-info.txt"), INVALID,
                       f"malformed Payload-Oxum {oxum[0][:80]!r}")
            return
        octets, count = int(m.group(1)), int(m.group(2))
        found = (sum(layout.payload.values()), len(layout.payload))
        if (octets, count) != found:
            report.add("bag", layout.name("bag-info.txt"), MISMATCH,
                       f"Payload-Oxum says {octets:,} bytes in {count:,} files; data/ holds "
                       f"{found[0]:,} bytes in {found[1]:,} files")


def _completeness(layout: BagLayout, report: Report) -> None:
    for algorithm, entries in layout.manifests.items():
        manifest = f"manifest-{algorithm}.txt"
        for rel in sorted(set(entries) - set(layout.payload) - layout.irregular):
            report.add("bag", layout.name(rel), MISSING, f"listed in {manifest}, not on disk")
        for rel in sorted(set(layout.payload) - set(entries)):
            report.add("bag", layout.name(rel), EXTRA,
                       f"payload file not listed in {manifest}")
    listed: set[str] = set()
    for algorithm, entries in layout.tag_manifests.items():
        listed.update(entries)
        for rel in sorted(set(entries) - set(layout.tags) - layout.irregular):
            if rel.startswith("data/"):
                report.add("bag", layout.name(rel), INVALID,
                           f"tagmanifest-{algorithm}.txt lists a payload file")
            else:
                report.add("bag", layout.name(rel), MISSING,
                           f"listed in tagmanifest-{algorithm}.txt, not on disk")
    if layout.tag_manifests:
        for rel in sorted(set(layout.tags) - listed):
            if not rel.startswith("tagmanifest-"):
                report.add("bag", layout.name(rel), WARNING,
                           "tag file not listed in any tag manifest (not checked)")


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

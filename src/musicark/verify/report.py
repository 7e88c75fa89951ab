"""What a fixity check found: problems that name the file and the kind of damage, counts,
and the exit code (0 all good, 1 damage found, 2 could not run)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from musicark.errors import BadQuery

EXIT_OK, EXIT_DAMAGE, EXIT_CANNOT_RUN = 0, 1, 2

# Kinds of damage, as they appear in reports, events and the ledger's `fixity` column.
MISSING = "missing"  # a file that should be there is not
SIZE = "size"  # the file's length differs from the recorded one
CHECKSUM = "checksum"  # same length, different bytes
UNREADABLE = "unreadable"  # the file could not be read (I/O error, permissions)
EXTRA = "extra"  # a file that no manifest or ledger row accounts for
INVALID = "invalid"  # a file that cannot be parsed (bagit.txt, a torrent, JSON, a database)
MISMATCH = "mismatch"  # two records that must agree do not (files.jsonl vs the manifest, ...)
UNSUPPORTED = "unsupported"  # not checkable by musicark (an unknown algorithm, BagIt 2.x)
INCOMPLETE = "incomplete"  # a holey bag: a payload file fetch.txt says to fetch is not here yet
UNDECODABLE = "undecodable"  # the bytes match their SHA-256 but the audio does not decode
WARNING = "warning"  # worth knowing, not damage (a writable store file, a .part leftover)


@dataclass
class Problem:
    scope: str  # store, release, bag, catalog
    path: str  # the file (or table) concerned, as the user would look for it
    kind: str
    detail: str
    sha256: str | None = None  # the expected content, where one is known

    @property
    def damage(self) -> bool:
        return self.kind != WARNING

    def line(self) -> str:
        return f"{self.path}: {self.kind}: {self.detail}"


@dataclass
class Report:
    scope: str
    files: int = 0  # files checked
    bytes: int = 0  # bytes read
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def add(self, scope: str, path: str, kind: str, detail: str,
            sha256: str | None = None) -> None:
        self.problems.append(Problem(scope, path, kind, detail, sha256))

    @property
    def damaged(self) -> list[Problem]:
        return [p for p in self.problems if p.damage]

    @property
    def exit_code(self) -> int:
        return EXIT_DAMAGE if self.damaged else EXIT_OK

    def merge(self, other: Report) -> None:
        self.files += other.files
        self.bytes += other.bytes
        self.seconds += other.seconds
        self.problems.extend(other.problems)
        for key, value in other.notes.items():
            self.notes[f"{other.scope}.{key}" if other.scope != self.scope else key] = value

    def as_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "ok": not self.damaged, "files": self.files,
                "bytes": self.bytes, "seconds": round(self.seconds, 3),
                "gb_per_s": round(self.bytes / self.seconds / 1e9, 3) if self.seconds else None,
                "damage": len(self.damaged),
                "warnings": len(self.problems) - len(self.damaged),
                "problems": [asdict(p) for p in self.problems], "notes": self.notes}


_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_bytes(text: str) -> int:
    """'1TB', '500 GB', '2GiB', '1000' → bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", text or "")
    if not m or m.group(2).upper() not in _UNITS:
        raise BadQuery(f"not a size: {text!r} (use e.g. 500GB, 1TB, 2GiB)")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def parse_duration(text: str) -> float:
    """'90d', '2h', '30m', '45s', '1w' → seconds."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smhdw])\s*", text or "")
    if not m:
        raise BadQuery(f"not a duration: {text!r} (use e.g. 90d, 2h, 30m)")
    return float(m.group(1)) * _SECONDS[m.group(2)]


def parse_fraction(text: str) -> float:
    """'2%' or '0.02' → 0.02 (a share of the files, above 0 and at most 1)."""
    raw = (text or "").strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise BadQuery(f"not a share of the files: {text!r} (use e.g. 2% or 0.02)")
    return value

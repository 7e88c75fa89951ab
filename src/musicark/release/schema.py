"""The shape of each record a reader of release files accepts: one check function per kind
(a files.jsonl line, a torrents.json entry, the torrents.json document).

Each takes what `json.loads` gave and returns a new dict holding only the known fields,
each of its type and range (digests of 64 lowercase hex, paths relative and normalized,
integers within SQLite's), or raises `Refused` naming the field. Readers report a refused
record as a bad entry (file, line, reason) and go on with the rest: nothing downstream sees a
raw value from a stranger's release.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from musicark.trust import MAX_INT, Refused, digest, integer, loads, read_regular, relative_path

MAX_TEXT = 64 << 10  # characters of any one string field
MAX_TRACKS = 10_000  # tracks one payload file may name
MAX_JSONL = 1 << 30  # bytes of a files.jsonl read into memory
MAX_LISTING = 256 << 20  # bytes of a torrents.json
_TRACK = re.compile(r"track:([0-9]{1,19})")
_BTIH = re.compile(r"[0-9a-f]{40}")


def _text(record: dict, key: str, what: str, *, required: bool = False) -> str | None:
    value = record.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise Refused(f"{what}{key} is not a string of at most {MAX_TEXT:,} characters")
    return value


def _number(record: dict, key: str, what: str) -> float | int | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not -MAX_INT <= value <= MAX_INT:
        raise Refused(f"{what}{key} is not a number: {str(value)[:40]!r}")
    return value


def _int(record: dict, key: str, what: str, *, required: bool = False) -> int | None:
    if record.get(key) is None and not required:
        return None
    return integer(record.get(key), f"{what}{key}")


def _object(value: object, what: str) -> dict:
    if not isinstance(value, dict):
        raise Refused(f"{what} is not a JSON object but {type(value).__name__}")
    return value


def track_ref(value: object, what: str = "track") -> int:
    """The rowid of a `track:N` reference (N from 1 to 2**63-1)."""
    m = _TRACK.fullmatch(value) if isinstance(value, str) else None
    if m is None or not 0 < int(m.group(1)) <= MAX_INT:
        raise Refused(f"{what} is not track:N with N from 1 to {MAX_INT}: {str(value)[:40]!r}")
    return int(m.group(1))


def _track(value: object, n: int) -> dict[str, Any]:
    what = f"tracks[{n}]."
    t = _object(value, f"tracks[{n}]")
    track_ref(t.get("track"), f"{what}track")
    out: dict[str, Any] = {"track": t["track"]}
    for key in ("source", "ext_id", "isrc", "mbid", "title"):
        out[key] = _text(t, key, what)
    out["popularity"] = _number(t, "popularity", what)
    out["expected_listens"] = _number(t, "expected_listens", what)
    return out


def file_record(value: object) -> dict[str, Any]:
    """A line of a shard's files.jsonl: a payload file, its tracks and its restore patch."""
    e = _object(value, "the line")
    path = relative_path(e.get("path"), "path")
    if not path.startswith("data/"):
        raise Refused(f"path {path[:80]!r} is not under data/")
    out: dict[str, Any] = {"path": path, "sha256": digest(e.get("sha256"), "sha256"),
                           "size": _int(e, "size", "", required=True),
                           "tier": _text(e, "tier", ""), "licence": _text(e, "licence", ""),
                           "source_sha256": None, "restore": None, "tracks": []}
    if e.get("source_sha256") is not None:
        out["source_sha256"] = digest(e["source_sha256"], "source_sha256")
    if e.get("restore") is not None:
        r = _object(e["restore"], "restore")
        patch = relative_path(r.get("patch"), "restore.patch")
        if patch.startswith("data/") or "/" not in patch:
            raise Refused(f"restore.patch {patch[:80]!r} is not a tag file under a folder "
                          "outside data/")
        out["restore"] = {"patch": patch,
                          "patch_sha256": digest(r.get("patch_sha256"), "restore.patch_sha256"),
                          "sha256": digest(r.get("sha256"), "restore.sha256")}
    tracks = e.get("tracks")
    if tracks is not None:
        if not isinstance(tracks, list) or len(tracks) > MAX_TRACKS:
            raise Refused(f"tracks is not a list of at most {MAX_TRACKS:,} objects")
        out["tracks"] = [_track(t, n) for n, t in enumerate(tracks)]
    return out


def _name(value: object, what: str) -> str:
    name = relative_path(value, what)
    if "/" in name:
        raise Refused(f"{what} {name[:80]!r} is not a single folder name")
    return name


def torrent_entry(value: object) -> dict[str, Any]:
    """An entry of torrents.json: a shard's (or the metadata's) torrent and its facts.
    Its `torrent` path is checked as a string here and against the release folder where
    it is opened (an earlier release's entry names `../<release>/...`)."""
    e = _object(value, "the entry")
    out: dict[str, Any] = {"name": _name(e.get("name"), "name"),
                           "release": _text(e, "release", "", required=True),
                           "metadata": e.get("metadata") is True}
    if e.get("metadata") not in (None, True, False):
        raise Refused("metadata is not true or false")
    torrent = _text(e, "torrent", "", required=True)
    if "\0" in str(torrent) or "\\" in str(torrent):
        raise Refused(f"torrent {str(torrent)[:80]!r} holds a NUL or a backslash")
    out["torrent"] = torrent
    for key in ("btih",):
        if e.get(key) is not None and not (isinstance(e[key], str) and _BTIH.fullmatch(e[key])):
            raise Refused(f"{key} is not 40 lowercase hex characters: {str(e[key])[:80]!r}")
        out[key] = e.get(key)
    for key in ("btmh", "magnet", "bucket", "shard", "added"):
        out[key] = _text(e, key, "")
    for key in ("torrent_size", "data_size", "num_files", "piece_length", "seeders"):
        out[key] = _int(e, key, "")
    for key in ("popularity_min", "popularity_max", "listens_covered"):
        out[key] = _number(e, key, "")
    return out


def torrent_list(data: bytes, what: str) -> tuple[str, list[dict[str, Any]], list[str]]:
    """torrents.json: (release name, its good entries, one line per bad entry)."""
    doc = _object(loads(data, what), what)
    release = doc.get("release")
    if not isinstance(release, str) or not release or len(release) > MAX_TEXT:
        raise Refused(f"{what}: release is not a non-empty string")
    if not isinstance(doc.get("torrents"), list):
        raise Refused(f"{what}: torrents is not a list")
    good, bad = [], []
    for n, value in enumerate(doc["torrents"], 1):
        try:
            good.append(torrent_entry(value))
        except Refused as exc:
            bad.append(f"{what}: torrent entry {n}: {exc}")
    return release, good, bad


def read_listing(path: Path) -> tuple[str, list[dict[str, Any]], list[str]]:
    """torrents.json at `path`, read as a regular file and checked (`torrent_list`)."""
    return torrent_list(read_regular(path, "torrents.json", limit=MAX_LISTING), str(path))


def read_jsonl(path: Path, check: Callable[[object], dict[str, Any]] = file_record
               ) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line number, record, None) per good line, (line number, None, reason) per bad one.
    Refused when the file itself cannot be read (a symlink, not UTF-8, too large)."""
    data = read_regular(path, "files.jsonl", limit=MAX_JSONL)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(f"{path} is not UTF-8: {exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, check(loads(line, f"line {number}")), None
        except Refused as exc:
            reason = str(exc)
            yield number, None, reason if reason.startswith(f"line {number}") \
                else f"line {number}: {reason}"

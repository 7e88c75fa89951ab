"""The per-file work of ingest, run in worker processes or on Dask workers.

`examine` is a pure function of (path, options) → FileResult (picklable, no database), so
a process pool and a Dask cluster give identical results; one writer records them.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from musicark.ingest import tags as tagging
from musicark.ingest.paths import UTF8_NOTE, path_key
from musicark.ingest.probe import BadAudio, NotAudio, probe
from musicark.ingest.sniff import read_sign
from musicark.ingest.store import (
    NotRegularFile,
    SourceChanged,
    Store,
    file_kind,
    open_regular,
    same_file,
)
from musicark.runner import decoder_failure


@dataclass
class FileResult:
    path: str | bytes  # the ledger key: text when UTF-8, else the bytes (ingest/paths.py)
    status: str  # ok | quarantined | skipped
    reason: str | None = None
    path_note: str | None = None  # a problem of the path, not of the content
    size: int | None = None
    mtime_ns: int | None = None
    sha256: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    fingerprint: bytes | None = None
    tags: dict[str, list[str]] | None = None
    common: dict[str, Any] | None = None


def examine(raw_path: bytes, store_root: str, link: bool = False,
            fingerprint: bool = True, check: str = "structure",
            sync_dir: bool = True, crashed: str | None = None) -> FileResult:
    """Probe, check (`check`: "structure" or "decode", see probe.py), fingerprint, tag-read
    and store one file; never raises. `sync_dir=False`: the caller syncs the store before
    recording the result (see Store.put).

    Only regular files are read: a device, FIFO or socket is quarantined by its path. A file
    with any sign of audio (magic, container, extension) is stored even when FFmpeg cannot
    open it; only a file with no sign at all is skipped as not audio. A file that changes
    while it is read is reported as such, whatever its bytes looked like meanwhile.
    `crashed` says how a worker died or hung examining this file before (see
    musicark.runner): the file is then stored and quarantined with that reason, without
    opening it as audio again."""
    key = path_key(raw_path)
    try:
        st = os.stat(raw_path)
    except OSError as exc:
        reason = "symlink loop" if exc.errno == errno.ELOOP else \
            f"cannot stat: {exc.strerror or exc}"
        return FileResult(key, "quarantined", reason)
    result = FileResult(key, "ok", size=st.st_size, mtime_ns=st.st_mtime_ns)
    if not stat.S_ISREG(st.st_mode):
        result.status, result.reason = "quarantined", \
            f"not a regular file ({file_kind(st.st_mode)}); not read"
        result.size = None
        return result
    path = Path(os.fsdecode(raw_path))
    try:
        fd, opened = open_regular(raw_path)
    except NotRegularFile as exc:  # swapped for a special file since the stat
        result.status, result.reason, result.size = "quarantined", f"{exc}; not read", None
        return result
    except PermissionError:
        result.status, result.reason = "quarantined", "permission denied"
        return result
    except OSError as exc:
        result.status, result.reason = "quarantined", f"cannot open: {exc.strerror or exc}"
        return result
    try:
        sign = read_sign(fd, raw_path, opened.st_size)
    finally:
        os.close(fd)
    problems: list[str] = []
    if st.st_size == 0:
        problems.append("empty file")
    elif crashed is not None:
        problems.append(decoder_failure(crashed))
    else:
        _inspect(path, fingerprint, check, result, problems, sign)
    if (why := _changed(raw_path, st)) is not None:
        return _changed_result(result, why)
    if result.status == "skipped":
        return result
    if isinstance(key, bytes):
        # The name is the path's problem, not the content's: the same bytes under a good name
        # must not be quarantined because of it.
        result.path_note = UTF8_NOTE
    try:
        result.sha256, result.size = Store(Path(store_root)).put(
            path, link=link, scanned=st, sync_dir=sync_dir)
    except SourceChanged as exc:
        return _changed_result(result, exc.why)
    except NotRegularFile as exc:
        result.status, result.reason, result.size = "quarantined", f"{exc}; not read", None
        result.sha256 = None
        return result
    except OSError as exc:
        result.status, result.reason = "quarantined", f"cannot store: {exc.strerror or exc}"
        return result
    if problems:
        result.status, result.reason = "quarantined", "; ".join(problems)
    return result


def _changed(raw_path: bytes, before: os.stat_result) -> str | None:
    try:
        return same_file(before, os.stat(raw_path))
    except OSError as exc:
        return f"gone: {exc.strerror or exc}"


def _changed_result(result: FileResult, why: str) -> FileResult:
    """Quarantined by path, nothing stored: the bytes read are no consistent version of the
    file. Its scan-time size and mtime are kept, so the next run examines it again."""
    result.status, result.reason = "quarantined", \
        f"changed while reading ({why}); ingest it again once it is stable"
    result.sha256, result.facts, result.fingerprint = None, {}, None
    result.tags = result.common = None
    return result


def _inspect(path: Path, fingerprint: bool, check: str, result: FileResult,
             problems: list[str], sign: str | None) -> None:
    """Stream facts, integrity check, fingerprint and tags, into `result` and `problems`."""
    try:
        facts = probe(path, fingerprint=fingerprint, check=check)
        result.facts = {"container": facts.container, "codec": facts.codec,
                        "bitrate": facts.bitrate, "sample_rate": facts.sample_rate,
                        "channels": facts.channels, "duration_ms": facts.duration_ms}
        if facts.fingerprint is not None and len(facts.fingerprint):
            result.fingerprint = facts.fingerprint.astype("<u4").tobytes()
    except NotAudio as exc:
        if sign is None:
            result.status = "skipped"
            result.reason = f"not audio: no sign of audio in its bytes or name; {exc}"
            return
        problems.append(f"no decodable audio ({sign}): {exc}")
    except BadAudio as exc:
        problems.append(f"undecodable audio: {exc}")
    except OSError as exc:
        problems.append(f"unreadable: {exc.strerror or exc}")
        return
    try:
        found = tagging.read_tags(path)
        result.tags, result.common = found.raw, found.common
        if found.total_chars > tagging.MAX_TOTAL_CHARS:
            problems.append(f"tags too large ({found.total_chars:,} characters)")
        elif found.truncated:
            result.common = {**found.common, "notes": [
                f"tag values longer than {tagging.MAX_VALUE_CHARS:,} characters were cut "
                "in the ledger (the stored file keeps them)"]}
    except tagging.BadTags as exc:
        problems.append(f"malformed tags: {exc}")

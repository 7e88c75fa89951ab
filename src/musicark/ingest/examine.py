"""The per-file work of ingest, run in worker processes or on Dask workers.

`examine` is a pure function of (path, options) → FileResult (picklable, no database), so
a process pool and a Dask cluster give identical results; one writer records them.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from musicark.ingest import tags as tagging
from musicark.ingest.probe import BadAudio, NotAudio, probe
from musicark.ingest.store import Store


@dataclass
class FileResult:
    path: str  # text form; undecodable bytes shown as \\xNN
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


def path_text(raw: bytes) -> tuple[str, bool]:
    """The path as text for the ledger, and whether it was valid UTF-8."""
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace"), False


def examine(raw_path: bytes, store_root: str, link: bool = False,
            fingerprint: bool = True) -> FileResult:
    """Probe, decode-check, fingerprint, tag-read and store one file; never raises."""
    text, utf8 = path_text(raw_path)
    try:
        st = os.stat(raw_path)
    except OSError as exc:
        reason = "symlink loop" if exc.errno == errno.ELOOP else \
            f"cannot stat: {exc.strerror or exc}"
        return FileResult(text, "quarantined", reason)
    result = FileResult(text, "ok", size=st.st_size, mtime_ns=st.st_mtime_ns)
    path = Path(os.fsdecode(raw_path))
    if not os.access(raw_path, os.R_OK):
        result.status, result.reason = "quarantined", "permission denied"
        return result
    problems: list[str] = []
    if st.st_size == 0:
        problems.append("empty file")
    else:
        _inspect(path, fingerprint, result, problems)
    if result.status == "skipped":
        return result
    if not utf8:
        # The name is the path's problem, not the content's: the same bytes under a good name
        # must not be quarantined because of it.
        result.path_note = "file name is not valid UTF-8 (recorded with \\x escapes)"
    try:
        result.sha256, result.size = Store(Path(store_root)).put(path, link=link)
    except OSError as exc:
        result.status, result.reason = "quarantined", f"cannot store: {exc.strerror or exc}"
        return result
    if problems:
        result.status, result.reason = "quarantined", "; ".join(problems)
    return result


def _inspect(path: Path, fingerprint: bool, result: FileResult, problems: list[str]) -> None:
    """Stream facts, decode check, fingerprint and tags, into `result` and `problems`."""
    try:
        facts = probe(path, fingerprint=fingerprint)
        result.facts = {"container": facts.container, "codec": facts.codec,
                        "bitrate": facts.bitrate, "sample_rate": facts.sample_rate,
                        "channels": facts.channels, "duration_ms": facts.duration_ms}
        if facts.fingerprint is not None and len(facts.fingerprint):
            result.fingerprint = facts.fingerprint.astype("<u4").tobytes()
    except NotAudio as exc:
        result.status, result.reason = "skipped", str(exc)
        return
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

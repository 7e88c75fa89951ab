"""Register a verified shard's payload into the store and the ledger.

Each payload file is linked into the store (reflink or hardlink, so the client can go on
seeding the same bytes from the shard; `copy` copies them) without reading it again: the
shard check just hashed it. Its ledger row comes from the snapshot (same facts, the
publisher's rowid where free) or, without one, from probing the file; provenance names the
release, shard and path, the licence is the catalog's. Tracks are linked as the snapshot
links them, and every track files.jsonl names is linked to its payload file (method
`release`). With `restore_originals`, each tagged copy's untagged original is rebuilt from
its restore patch, checked against its SHA-256 and stored too.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from musicark.archive import Archive, utc_now
from musicark.derive.patch import apply_patch
from musicark.errors import BadQuery
from musicark.ingest.store import ChecksumMismatch, Store, same_file
from musicark.mirror.check import ShardCheck
from musicark.mirror.locate import ShardDir
from musicark.mirror.minimal import add_tracks
from musicark.release.schema import read_jsonl
from musicark.trust import regular_file
from musicark.verify.snapshot import bounded

PATCH_SLACK = 64 << 20  # an original may exceed twice its tagged copy by this much at most
SKIP_COLUMNS = {"rowid", "sha256", "status", "reason", "provenance", "verified_at", "fixity"}


@dataclass
class Registered:
    files: int = 0  # ledger rows this shard's files have (new or already there)
    new_files: int = 0
    linked: int = 0  # store objects made by reflink or hardlink
    copied: int = 0
    originals: int = 0  # untagged originals rebuilt and stored
    links: int = 0  # track-file links added
    minimal_tracks: int = 0
    problems: list[str] = field(default_factory=list)


def read_entries(root: Path, scanned: os.stat_result | None) -> list[dict]:
    """files.jsonl's records, each checked (`release.schema.file_record`), from the very
    file the shard check read (unchanged since `scanned`); BadQuery otherwise."""
    path = root / "files.jsonl"
    if scanned is None or (why := same_file(scanned, os.stat(path, follow_symlinks=False))):
        raise BadQuery(f"{path} changed since the shard was checked ({why or 'new'})")
    entries = []
    for _, entry, reason in read_jsonl(path):
        if entry is None:
            raise BadQuery(f"{path}: {reason}")
        entries.append(entry)
    return entries


def _snap_row(conn: sqlite3.Connection, sha256: str, snap: bool) -> dict | None:
    if not snap:
        return None
    cur = conn.execute("SELECT rowid AS rowid_, * FROM snap.files WHERE sha256 = ?", (sha256,))
    row = cur.fetchone()
    return dict(zip([d[0] for d in cur.description], row, strict=True)) if row else None


def _free(conn: sqlite3.Connection, rowid: int | None) -> int | None:
    if rowid is None or conn.execute("SELECT 1 FROM main.files WHERE rowid = ?",
                                     (rowid,)).fetchone():
        return None
    return rowid


def _facts(path: Path) -> dict:
    """Container, codec and stream facts of a payload file no snapshot describes."""
    from musicark.ingest.probe import BadAudio, NotAudio, probe

    try:
        f = probe(path, fingerprint=False)
    except (NotAudio, BadAudio, OSError):
        return {}
    return {"container": f.container, "codec": f.codec, "bitrate": f.bitrate,
            "sample_rate": f.sample_rate, "channels": f.channels, "duration_ms": f.duration_ms}


def ledger_row(conn: sqlite3.Connection, sha256: str, size: int, provenance: str,
               licence: str | None, path: Path | None, snap: bool) -> tuple[int, bool]:
    """The ledger row for stored content: (rowid, new). An existing row is kept; a damaged
    one whose bytes just came back good is ok again."""
    row = conn.execute("SELECT rowid, status FROM main.files WHERE sha256 = ?",
                       (sha256,)).fetchone()
    if row is not None:
        if row[1] in ("damaged", "absent"):  # its bytes just came (back), checked
            conn.execute("UPDATE main.files SET status = 'ok', reason = NULL, fixity = 'ok', "
                         "verified_at = ?, provenance = CASE WHEN status = 'absent' THEN ? "
                         "ELSE provenance END WHERE rowid = ?",
                         (utc_now(), provenance, row[0]))
        return row[0], False
    now = utc_now()
    found = _snap_row(conn, sha256, snap)
    if found is not None:
        here = [r[1] for r in conn.execute("PRAGMA main.table_info(files)")]
        cols = [c for c in here if c in found and c not in SKIP_COLUMNS]
        values = [found[c] for c in cols]
        if "licence" in cols and found.get("licence") is None:
            values[cols.index("licence")] = licence
        rowid = conn.execute(
            f"INSERT INTO main.files(rowid, sha256, status, provenance, verified_at, fixity, "
            f"{', '.join(cols)}) VALUES (?, ?, 'ok', ?, ?, 'ok', "
            f"{', '.join('?' * len(cols))})",
            (_free(conn, found["rowid_"]), sha256, provenance, now, *values)).lastrowid
        return rowid, True
    facts = _facts(path) if path is not None else {}
    rowid = conn.execute(
        "INSERT INTO main.files(sha256, size, container, codec, bitrate, sample_rate, channels, "
        "duration_ms, licence, provenance, status, added_at, verified_at, fixity) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,'ok',?,?,'ok')",
        (sha256, size, facts.get("container"), facts.get("codec"), facts.get("bitrate"),
         facts.get("sample_rate"), facts.get("channels"), facts.get("duration_ms"), licence,
         provenance, now, now)).lastrowid
    return rowid, True


LINK_SNAPSHOT = """
INSERT OR IGNORE INTO main.track_files(track_rowid, file_rowid, method, score)
SELECT mt.rowid, mf.rowid, tf.method, tf.score
  FROM snap.track_files tf
  JOIN snap.files sf ON sf.rowid = tf.file_rowid
  JOIN main.files mf ON mf.sha256 = sf.sha256
  JOIN snap.tracks st ON st.rowid = tf.track_rowid
  JOIN snap.sources ss ON ss.id = st.source_id
  JOIN main.sources ms ON ms.name = ss.name
  JOIN main.tracks mt ON mt.source_id = ms.id AND mt.ext_id = st.ext_id
 WHERE mf.rowid IN (SELECT rowid FROM temp.m_held)
"""

# Files the mirror does not hold but whose derivations it does (the original an Opus encode
# was made from, the untagged file behind a tagged copy): ledger rows with status 'absent'
# and the snapshot's facts, so the derivations and track links stay whole and the mirror's
# own release of the same plan ships what the publisher's did.
ADD_ABSENT = """
INSERT INTO main.files(rowid, sha256, size, container, codec, bitrate, sample_rate, channels,
                       duration_ms, licence, provenance, status, reason, added_at)
SELECT CASE WHEN EXISTS (SELECT 1 FROM main.files x WHERE x.rowid = si.rowid) THEN NULL
            ELSE si.rowid END,
       si.sha256, si.size, si.container, si.codec, si.bitrate, si.sample_rate, si.channels,
       si.duration_ms, si.licence, :provenance, 'absent',
       'known from a release''s catalog snapshot; its bytes are not held here', :now
  FROM snap.derivations d
  JOIN snap.files si ON si.rowid = d.input_file
  JOIN snap.files so ON so.rowid = d.output_file
 WHERE so.sha256 IN (SELECT sha256 FROM main.files)
   AND length(si.sha256) = 64 AND si.sha256 NOT GLOB '*[^0-9a-f]*'
   AND si.sha256 NOT IN (SELECT sha256 FROM main.files
                                                   WHERE sha256 IS NOT NULL)
 GROUP BY si.sha256
"""

LINK_DERIVATIONS = """
INSERT OR IGNORE INTO main.derivations(input_file, kind, output_file, params, patch_file,
                                       created_at)
SELECT mi.rowid, d.kind, mo.rowid, d.params, mp.rowid, d.created_at
  FROM snap.derivations d
  JOIN snap.files si ON si.rowid = d.input_file JOIN main.files mi ON mi.sha256 = si.sha256
  JOIN snap.files so ON so.rowid = d.output_file JOIN main.files mo ON mo.sha256 = so.sha256
  LEFT JOIN snap.files sp ON sp.rowid = d.patch_file
  LEFT JOIN main.files mp ON mp.sha256 = sp.sha256
 WHERE d.patch_file IS NULL OR mp.rowid IS NOT NULL
"""


def _link_release_tracks(conn: sqlite3.Connection, file_rowid: int, tracks: list[dict]) -> int:
    added = 0
    for t in tracks:
        if t.get("ext_id") is None:
            continue
        row = conn.execute("SELECT t.rowid FROM tracks t JOIN sources s ON s.id = t.source_id "
                           "WHERE s.name = ? AND t.ext_id = ?",
                           (t.get("source"), t["ext_id"])).fetchone()
        if row is None:
            continue
        added += conn.execute("INSERT OR IGNORE INTO track_files(track_rowid, file_rowid, "
                              "method, score) VALUES (?, ?, 'release', NULL)",
                              (row[0], file_rowid)).rowcount
    return added


def _restore_original(store: Store, payload: Path, patch: Path, want: str) -> int:
    """Rebuild the untagged original into the store; returns its size. ChecksumMismatch
    when the rebuild is not the original the patch names, or the patch declares more than
    an original of that tagged copy can be (a bomb would be allocated whole)."""
    changed, data = payload.read_bytes(), patch.read_bytes()
    cap = 2 * len(changed) + PATCH_SLACK
    try:
        declared = zstandard.get_frame_parameters(data[:18]).content_size
    except zstandard.ZstdError as exc:
        raise ChecksumMismatch(f"not a zstd patch: {exc}") from None
    if declared == zstandard.CONTENTSIZE_UNKNOWN or declared > cap:
        raise ChecksumMismatch(f"the patch declares {declared:,} bytes, more than the "
                               f"{cap:,} an original of {len(changed):,} bytes may have"
                               if declared != zstandard.CONTENTSIZE_UNKNOWN
                               else "the patch does not declare its size")
    original = apply_patch(changed, data)
    store.tmp.mkdir(parents=True, exist_ok=True)
    tmp = store.tmp / f"{uuid.uuid4().hex}.restore.part"
    try:
        with open(tmp, "wb") as fh:
            fh.write(original)
            fh.flush()
            os.fsync(fh.fileno())
        store.put(tmp, link=True, expected=want)
    finally:
        tmp.unlink(missing_ok=True)
    return len(original)


def register_shard(archive: Archive, check: ShardCheck, stats: dict[str, os.stat_result], *,
                   copy: bool = False, restore_originals: bool = False, snap: bool,
                   minimal: bool, seconds: float | None = None) -> Registered:
    """Store and record every payload file (and restore patch) of a verified shard; one
    transaction for the catalog rows, after the store objects are in place, its queries
    (on the snapshot) within `seconds`."""
    shard = check.shard
    release = shard.release.name
    store = Store(archive.store_path)
    done = Registered()
    entries = read_entries(shard.path, stats.get("files.jsonl"))
    stored: list[tuple[str, int, str, str | None, Path, list[dict]]] = []

    def put(rel: str, sha256: str) -> None:
        path = regular_file(shard.path, rel, f"{shard.path / 'files.jsonl'}: path")
        before = (path.stat().st_nlink, store.has(sha256))
        store.put(path, link=not copy, expected=sha256, scanned=stats.get(rel), trusted=True)
        if not before[1]:
            linked = not copy and path.stat().st_nlink > before[0]
            done.linked += linked
            done.copied += not linked

    with store.writing():
        for e in entries:
            put(e["path"], e["sha256"])
            where = f"release {release}, shard {shard.name}, path {e['path']}"
            stored.append((e["sha256"], e["size"], where, e.get("licence"), shard.path / e["path"],
                           e.get("tracks") or []))
            restore = e["restore"] or {}
            if restore:
                put(restore["patch"], restore["patch_sha256"])
                patch = shard.path / restore["patch"]
                stored.append((restore["patch_sha256"], patch.stat().st_size,
                               f"release {release}, shard {shard.name}, path {restore['patch']}",
                               e.get("licence"), None, []))
                if restore_originals:
                    try:
                        size = _restore_original(store, shard.path / e["path"], patch,
                                                 restore["sha256"])
                    except ChecksumMismatch as exc:
                        done.problems.append(f"{shard.path / e['path']}: the restore patch "
                                             f"does not rebuild the original: {exc}")
                        continue
                    done.originals += 1
                    stored.append((restore["sha256"], size,
                                   f"release {release}, shard {shard.name}, restored from "
                                   f"{e['path']} and {restore['patch']}", e.get("licence"),
                                   None, []))
    conn = archive.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        with bounded(conn, seconds, f"shard {shard.name}") if seconds else nullcontext():
            _record(archive, done, shard, entries, stored, snap=snap, minimal=minimal)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return done


def _record(archive: Archive, done: Registered, shard: ShardDir, entries: list[dict],
            stored: list,
            *, snap: bool, minimal: bool) -> None:
    """The shard's catalog rows (inside the caller's transaction)."""
    conn = archive.conn
    release = shard.release.name
    if minimal:
        done.minimal_tracks = add_tracks(conn, release, entries)
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS m_held (rowid INTEGER PRIMARY KEY)")
    conn.execute("DELETE FROM temp.m_held")
    for sha, size, where, licence, path, tracks in stored:
        rowid, new = ledger_row(conn, sha, size, where, licence, path, snap)
        done.files += 1
        done.new_files += new
        conn.execute("INSERT OR IGNORE INTO temp.m_held VALUES (?)", (rowid,))
        done.links += _link_release_tracks(conn, rowid, tracks)
    if snap:
        known = {"provenance": f"release {release}: known from its catalog snapshot, "
                               "not held", "now": utc_now()}
        while conn.execute(ADD_ABSENT, known).rowcount:  # inputs of inputs, in turn
            pass
        conn.execute("INSERT OR IGNORE INTO temp.m_held SELECT rowid FROM main.files "
                     "WHERE status = 'absent'")
        done.links += conn.execute(LINK_SNAPSHOT).rowcount
        conn.execute(LINK_DERIVATIONS)
    archive.record_event("mirror.import", shard.name, "ok",
                         {"release": release, "path": str(shard.path),
                          "files": done.files, "new_files": done.new_files,
                          "originals": done.originals})

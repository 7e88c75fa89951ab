"""`tag`: catalog metadata into copies of a plan's kept files, with restore patches.

Kept originals (tier `original`) and the Opus derivatives of `opus75` tracks get a tagged
copy in the store; each copy has a `tagged` derivation whose `patch_file` rebuilds the
untagged input byte for byte (`musicark restore`). Idempotent like `derive`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from musicark.analyse.tags import GAIN_FIELDS, gain_fields
from musicark.archive import Archive, utc_now
from musicark.derive.run import latest_plan
from musicark.derive.tags import KIND, extension, restore, tag_stored
from musicark.errors import BadQuery, NotInCatalog
from musicark.ingest.store import Store
from musicark.ingest.tags import BadTags, Tags, read_tags
from musicark.runner import fan_out
from musicark.verify.damage import mark_damaged, size_damage

TRACK_FIELDS_SQL = """
SELECT t.rowid, t.name, t.ext_id, t.mbid, t.isrc, t.track_number, t.disc_number,
       al.name, al.upc, substr(al.release_date, 1, 10),
       (SELECT json_group_array(name) FROM (SELECT a.name FROM track_artists ta
          JOIN artists a ON a.rowid = ta.artist_rowid WHERE ta.track_rowid = t.rowid
         ORDER BY ta.position))
  FROM tracks t LEFT JOIN albums al ON al.rowid = t.album_rowid WHERE t.rowid = ?
"""


# The order fields_for gives: Vorbis comments keep insertion order, so a tagged Opus or FLAC
# copy is rebuilt byte for byte (repair) only by writing its fields in this order again.
FIELD_ORDER = ("title", "artist", "album", "tracknumber", "discnumber", "date", "isrc",
               "barcode", "musicbrainz_trackid", "licence", "musicark_id", *GAIN_FIELDS)


def fields_for(archive: Archive, track_rowid: int, licence: str | None) -> dict[str, Any]:
    row = archive.conn.execute(TRACK_FIELDS_SQL, (track_rowid,)).fetchone()
    (rowid, name, ext_id, mbid, isrc, number, disc, album, upc, date, artists) = row
    return {"title": name, "artist": json.loads(artists), "album": album,
            "tracknumber": number, "discnumber": disc, "date": date, "isrc": isrc,
            "barcode": upc, "musicbrainz_trackid": mbid, "licence": licence,
            "musicark_id": f"track:{rowid}" + (f" {ext_id}" if ext_id else "")}


def tag_files(archive: Archive, plan_id: int | None = None, *, workers: int | None = None,
              progress: Callable[[int, int], None] = lambda d, t: None) -> dict[str, Any]:
    conn = archive.conn
    plan_id = plan_id or latest_plan(archive)
    targets = conn.execute("""
        SELECT DISTINCT coalesce(d.output_file, f.rowid) AS file, min(pi.track_rowid)
          FROM plan_items pi
          JOIN track_files tf ON tf.track_rowid = pi.track_rowid
          JOIN files f ON f.rowid = tf.file_rowid AND f.status = 'ok'
          LEFT JOIN derivations d ON d.input_file = f.rowid AND d.kind = 'opus75'
         WHERE pi.plan_id = ? AND (pi.tier = 'original' OR
                                   (pi.tier = 'opus75' AND d.output_file IS NOT NULL))
         GROUP BY 1 ORDER BY 1""", (plan_id,)).fetchall()
    done = {r[0] for r in conn.execute(
        "SELECT input_file FROM derivations WHERE kind = ?", (KIND,))}
    todo = [(file, track) for file, track in targets if file not in done]
    calls, meta, damaged = [], {}, []
    store = Store(archive.store_path)
    for file, track in todo:
        sha, container, codec, licence, size = conn.execute(
            "SELECT sha256, container, codec, licence, size FROM files WHERE rowid = ?",
            (file,)).fetchone()
        damage = size_damage(store.path_for(sha), size)
        if damage:  # never tag (and so never release) damaged bytes as good
            mark_damaged(archive, sha, *damage, by="tag")
            damaged.append({"file": file, "reason": f"damaged: {damage[1]}"})
            continue
        fields = fields_for(archive, track, licence) | gain_fields(conn, file, codec, track)
        meta[sha] = (file, fields)
        calls.append((str(archive.store_path), sha, fields, extension(container, codec)))
    report = {"plan": plan_id, "tagged": 0, "already": len(targets) - len(todo),
              "failed": damaged, "patch_bytes": [], "nothing_because": None}
    if not targets:
        report["nothing_because"] = (f"plan {plan_id} keeps no track with a file as an "
                                     "original or as a derived Opus file (run derive first?)")
    elif not todo:
        report["nothing_because"] = "every file the plan keeps is tagged already"
    progress(0, len(calls))
    with Store(archive.store_path).writing():
        for n, result in enumerate(fan_out(_tag_call, calls, workers=workers), 1):
            file, fields = meta[result["input"]]
            if result["ok"]:
                _record(archive, file, result, fields)
                report["tagged"] += 1
                report["patch_bytes"].append(result["patch_size"])
            else:
                report["failed"].append({"file": file, "reason": result["reason"]})
            progress(n, len(calls))
    sizes = sorted(report.pop("patch_bytes"))
    report["median_patch_bytes"] = sizes[len(sizes) // 2] if sizes else None
    archive.record_event("derive.tag", str(plan_id), "ok", report)
    return report


def _tag_call(store_root: str, sha: str, fields: dict, ext: str) -> dict:
    return {**tag_stored(store_root, sha, fields, ext), "input": sha}


def _record(archive: Archive, input_file: int, result: dict, fields: dict) -> None:
    conn = archive.conn
    now = utc_now()
    conn.execute("BEGIN IMMEDIATE")
    try:
        src = conn.execute(
            "SELECT container, codec, bitrate, sample_rate, channels, duration_ms, licence, "
            "sha256 FROM files WHERE rowid = ?", (input_file,)).fetchone()
        store = Store(archive.store_path)
        output = _file_row(conn, store, result["output"], src[:7],
                           f"tagged copy of sha256:{src[7]}", now)
        found = tags_of(store.path_for(result["output"]))
        if found is not None:  # what the copy's own tags say, as ingest records it
            conn.execute("UPDATE files SET tags = ?, common = ? WHERE rowid = ? AND "
                         "common IS NULL", (json.dumps(found.raw, ensure_ascii=False),
                                            json.dumps(found.common, ensure_ascii=False),
                                            output))
        patch = _file_row(conn, store, result["patch"], ("zstd", "zstd-patch", None, None, None,
                                                         None, src[6]),
                          f"restores sha256:{src[7]} from sha256:{result['output']}", now)
        conn.execute(
            "INSERT OR REPLACE INTO derivations(input_file, kind, output_file, params, "
            "patch_file, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (input_file, KIND, output, json.dumps(fields, sort_keys=True, ensure_ascii=False),
             patch, now))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def tags_of(path: Path) -> Tags | None:
    """The tags a stored file carries (None when mutagen cannot read them)."""
    try:
        return read_tags(path)
    except (BadTags, OSError):
        return None


def _file_row(conn, store: Store, sha: str, facts: tuple, provenance: str, now: str) -> int:
    row = conn.execute("SELECT rowid FROM files WHERE sha256 = ?", (sha,)).fetchone()
    if row:
        return row[0]
    size = store.path_for(sha).stat().st_size
    return conn.execute(
        "INSERT INTO files(sha256, size, container, codec, bitrate, sample_rate, channels, "
        "duration_ms, licence, provenance, status, added_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,'ok',?)", (sha, size, *facts, provenance, now)).lastrowid


def restore_file(archive: Archive, tagged_sha: str, out: Path) -> str:
    """Write the untagged original of a tagged store file to `out`; returns its SHA-256."""
    tagged_sha = tagged_sha.lower().removeprefix("sha256:")
    if not re.fullmatch(r"[0-9a-f]{64}", tagged_sha):
        raise BadQuery(f"not a SHA-256: {tagged_sha!r} (64 hexadecimal digits)")
    row = archive.conn.execute("""
        SELECT i.sha256, p.sha256 FROM derivations d
          JOIN files o ON o.rowid = d.output_file JOIN files i ON i.rowid = d.input_file
          JOIN files p ON p.rowid = d.patch_file
         WHERE d.kind = ? AND o.sha256 = ?""", (KIND, tagged_sha)).fetchone()
    if row is None:
        raise NotInCatalog(f"no tagged file {tagged_sha} with a restore patch")
    original_sha, patch_sha = row
    if not out.parent.is_dir():
        raise BadQuery(f"cannot write {out}: the directory {out.parent} does not exist")
    if out.is_dir():
        raise BadQuery(f"cannot write {out}: it is a directory; give a file name")
    data = restore(Store(archive.store_path), tagged_sha, patch_sha, original_sha)
    tmp = out.with_name(f".{out.name}.partial")
    try:
        tmp.write_bytes(data)
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BadQuery(f"cannot write {out}: {exc.strerror or exc}") from exc
    return original_sha

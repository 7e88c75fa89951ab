"""The catalog's record of analyses (migration 16): one row per file in `analyses`, its
raised flags in `analysis_flags`, and album gains in `album_loudness`; and the reads that
`show`, `ledger --flag`, the API and the tags use."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from musicark.analyse.flags import FLAGS
from musicark.analyse.loudness import gated_loudness, merge, replaygain, unpack
from musicark.analyse.measure import VERSION, Analysis
from musicark.errors import BadQuery

FAILED = "failed"  # `ledger --flag failed`: files the analysis could not read
COLUMNS = ("integrated_lufs", "lra_lu", "true_peak_dbtp", "sample_peak_dbfs", "track_gain_db",
           "track_peak", "cutoff_hz", "cutoff_confidence")

# The file that speaks for a track: analysed, not damaged, an original rather than one of
# musicark's own encodes of it (derivations), the first ingested.
TRACK_FILE = ("SELECT tf.file_rowid FROM track_files tf "
              "JOIN analyses a ON a.file_id = tf.file_rowid AND a.outcome = 'ok' "
              "JOIN files f ON f.rowid = tf.file_rowid AND f.status NOT IN ('damaged', "
              "'absent', 'quarantined') WHERE tf.track_rowid = ? AND NOT EXISTS "
              "(SELECT 1 FROM derivations d WHERE d.output_file = tf.file_rowid) "
              "ORDER BY tf.file_rowid LIMIT 1")


def record_analysis(conn, file_id: int, result: Analysis, now: str) -> None:
    """One file's analysis into the catalog (the caller holds the transaction)."""
    values = [getattr(result, c) for c in COLUMNS]
    conn.execute(
        f"INSERT OR REPLACE INTO analyses(file_id, analysed_at, version, outcome, reason, "
        f"{', '.join(COLUMNS)}, measures, blocks) VALUES ({', '.join('?' * 15)})",
        (file_id, now, VERSION, result.outcome, result.reason, *values,
         json.dumps(result.measures, sort_keys=True), result.blocks or None))
    conn.execute("DELETE FROM analysis_flags WHERE file_id = ?", (file_id,))
    conn.executemany("INSERT INTO analysis_flags(file_id, flag, value) VALUES (?, ?, ?)",
                     [(file_id, flag, value) for flag, value in result.flags.items()])


def update_albums(conn, file_ids: list[int], now: str) -> int:
    """Album gain and peak of every album one of `file_ids` is on, where every track of the
    album has an analysed file; returns the albums written."""
    written = 0
    for start in range(0, len(file_ids), 500):
        part = file_ids[start:start + 500]
        albums = [r[0] for r in conn.execute(
            f"SELECT DISTINCT t.album_rowid FROM track_files tf JOIN tracks t "
            f"ON t.rowid = tf.track_rowid WHERE t.album_rowid IS NOT NULL "
            f"AND tf.file_rowid IN ({','.join('?' * len(part))})", part)]
        for album in albums:
            written += _update_album(conn, album, now)
    return written


def _update_album(conn, album: int, now: str) -> int:
    tracks = [r[0] for r in conn.execute("SELECT rowid FROM tracks WHERE album_rowid = ?",
                                         (album,))]
    files = []
    for track in tracks:
        row = conn.execute(TRACK_FILE, (track,)).fetchone()
        if row is None:  # a track not held (or not analysed yet): no album gain
            conn.execute("DELETE FROM album_loudness WHERE album_id = ?", (album,))
            return 0
        files.append(row[0])
    rows = conn.execute(
        f"SELECT blocks, track_peak FROM analyses WHERE file_id IN "
        f"({','.join('?' * len(files))})", files).fetchall()
    loudness = gated_loudness(merge([unpack(blob) for blob, _ in rows]))
    peaks = [peak for _, peak in rows if peak is not None]
    conn.execute("INSERT OR REPLACE INTO album_loudness(album_id, computed_at, integrated_lufs, "
                 "gain_db, peak, tracks) VALUES (?, ?, ?, ?, ?, ?)",
                 (album, now, _r(loudness), _r(replaygain(loudness)),
                  max(peaks) if peaks else None, len(tracks)))
    return 1


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def file_analysis(conn, file_id: int) -> dict[str, Any] | None:
    """A file's analysis as stored: values, measures, and raised flags with their values."""
    row = conn.execute(f"SELECT analysed_at, version, outcome, reason, {', '.join(COLUMNS)}, "
                       f"measures FROM analyses WHERE file_id = ?", (file_id,)).fetchone()
    if row is None:
        return None
    names = ("analysed_at", "version", "outcome", "reason", *COLUMNS, "measures")
    data = dict(zip(names, row, strict=True))
    data["measures"] = json.loads(data["measures"]) if data["measures"] else {}
    data["flags"] = dict(conn.execute("SELECT flag, value FROM analysis_flags "
                                      "WHERE file_id = ? ORDER BY flag", (file_id,)).fetchall())
    return data


def track_loudness(conn, track_id: int) -> dict[str, Any] | None:
    """The loudness of a track (its file's analysis, TRACK_FILE) and of its album, for
    `show`, the API and the web page; None when not analysed."""
    try:
        row = conn.execute(TRACK_FILE, (track_id,)).fetchone()
    except sqlite3.OperationalError:  # a read-only catalog from before migration 16
        return None
    if row is None:
        return None
    data = file_analysis(conn, row[0])
    data["file"] = row[0]
    album = conn.execute("SELECT l.integrated_lufs, l.gain_db, l.peak FROM tracks t JOIN "
                         "album_loudness l ON l.album_id = t.album_rowid WHERE t.rowid = ?",
                         (track_id,)).fetchone()
    data["album_lufs"], data["album_gain_db"], data["album_peak"] = album or (None,) * 3
    return data


def flagged_files(conn, flag: str, limit: int = 50) -> list[dict[str, Any]]:
    """Files with a raised flag (or FAILED: whose analysis failed), worst first."""
    if flag not in (*FLAGS, FAILED):
        raise BadQuery(f"--flag must be one of {', '.join((*FLAGS, FAILED))}, not {flag!r}")
    if not 1 <= limit <= 10_000:
        raise BadQuery("limit must be between 1 and 10000")
    path = "(SELECT min(path) FROM file_paths p WHERE p.file_rowid = f.rowid)"
    if flag == FAILED:
        cur = conn.execute(
            f"SELECT f.rowid, f.sha256, f.codec, {path}, NULL, a.reason FROM analyses a "
            f"JOIN files f ON f.rowid = a.file_id WHERE a.outcome = 'failed' "
            f"ORDER BY f.rowid LIMIT ?", (limit,))
    else:
        # the largest value is the worst (a gap count, a DC offset...), except the ones
        # where lower is worse: a lower cutoff and a lower side level
        order = "ASC" if flag in ("fake-lossless", "mono-as-stereo") else "DESC"
        cur = conn.execute(
            f"SELECT f.rowid, f.sha256, f.codec, {path}, g.value, a.cutoff_confidence "
            f"FROM analysis_flags g JOIN files f ON f.rowid = g.file_id "
            f"JOIN analyses a ON a.file_id = g.file_id WHERE g.flag = ? "
            f"ORDER BY g.value {order}, f.rowid LIMIT ?", (flag, limit))
    names = ("rowid", "sha256", "codec", "path", "value",
             "reason" if flag == FAILED else "confidence")
    rows = [dict(zip(names, r, strict=True)) for r in cur]
    if flag != "fake-lossless" and flag != FAILED:
        for row in rows:
            row.pop("confidence")
    return rows


def replay_gains(conn, file_ids: list[int], album_ids: list[int]
                 ) -> tuple[dict[int, tuple], dict[int, tuple]]:
    """Batch read for players: {file id: (track gain dB, track peak)} of analysed files and
    {album id: (album gain dB, album peak)} of albums with a gain."""
    files: dict[int, tuple] = {}
    albums: dict[int, tuple] = {}
    try:
        for start in range(0, len(file_ids), 900):
            part = file_ids[start:start + 900]
            files.update((r[0], r[1:]) for r in conn.execute(
                f"SELECT file_id, track_gain_db, track_peak FROM analyses WHERE outcome = 'ok' "
                f"AND track_gain_db IS NOT NULL AND file_id IN ({','.join('?' * len(part))})",
                part))
        for start in range(0, len(album_ids), 900):
            part = album_ids[start:start + 900]
            albums.update((r[0], r[1:]) for r in conn.execute(
                f"SELECT album_id, gain_db, peak FROM album_loudness WHERE gain_db IS NOT NULL "
                f"AND album_id IN ({','.join('?' * len(part))})", part))
    except sqlite3.OperationalError:  # a read-only catalog from before migration 16
        return {}, {}
    return files, albums

"""Lengths for tracks whose catalog row has none, so that every kept track costs bytes.

Without this a track of unknown length was planned at 0 bytes and `--budget 0` kept it.
Estimate, in order: the median length of the track's album, of its first artist, of the
whole catalog, and last a typical song length when the catalog knows no length at all.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from musicark.archive import Archive

TYPICAL_MS = 240_000  # when nothing in the catalog has a length

UNKNOWN_SQL = """
    SELECT t.rowid, t.album_rowid,
           (SELECT ta.artist_rowid FROM track_artists ta
             WHERE ta.track_rowid = t.rowid AND ta.position = 0)
      FROM tracks t WHERE coalesce(t.duration_ms, 0) <= 0"""
ALBUM_SQL = """
    SELECT album_rowid, duration_ms FROM tracks
     WHERE duration_ms > 0 AND album_rowid IN (
           SELECT DISTINCT album_rowid FROM tracks
            WHERE coalesce(duration_ms, 0) <= 0 AND album_rowid IS NOT NULL)"""
ARTIST_SQL = """
    SELECT ta.artist_rowid, t.duration_ms FROM track_artists ta
      JOIN tracks t ON t.rowid = ta.track_rowid
     WHERE ta.position = 0 AND t.duration_ms > 0 AND ta.artist_rowid IN (
           SELECT ta2.artist_rowid FROM tracks t2
             JOIN track_artists ta2 ON ta2.track_rowid = t2.rowid AND ta2.position = 0
            WHERE coalesce(t2.duration_ms, 0) <= 0)"""


def _medians(rows) -> dict[int, float]:
    groups: dict[int, list[int]] = defaultdict(list)
    for key, ms in rows:
        groups[key].append(ms)
    return {key: float(np.median(values)) for key, values in groups.items()}


def fill_unknown(archive: Archive, rowid: np.ndarray, duration: np.ndarray) -> dict[str, int]:
    """Put estimated lengths into `duration` (aligned with the sorted `rowid`) where it is
    0; return how many came from each estimate (all zero when every length is known)."""
    counts = {"album": 0, "artist": 0, "catalog": 0, "typical": 0}
    unknown = duration <= 0
    if not unknown.any():
        return counts
    conn = archive.conn
    albums = _medians(conn.execute(ALBUM_SQL))
    artists = _medians(conn.execute(ARTIST_SQL))
    known = duration[~unknown]
    fallback, kind = ((float(np.median(known)), "catalog") if len(known)
                      else (float(TYPICAL_MS), "typical"))
    tracks, values = [], []
    for track, album, artist in conn.execute(UNKNOWN_SQL):
        if album in albums:
            value, source = albums[album], "album"
        elif artist in artists:
            value, source = artists[artist], "artist"
        else:
            value, source = fallback, kind
        tracks.append(track)
        values.append(value)
        counts[source] += 1
    at = np.searchsorted(rowid, np.asarray(tracks, dtype=rowid.dtype))
    duration[at] = np.asarray(values).astype(duration.dtype)
    return counts

"""Catalog statistics in the manner of the reference release's: popularity, listens, coverage,
explicit share, album sizes, durations, genres, keys and modes.

Everything is aggregated in SQLite (one pass per figure, no per-track Python), so it runs on
catalogs of hundreds of millions of tracks. Listens are known counts where a source gave them,
else the archive's popularity → listens model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from musicark.archive import Archive
from musicark.popularity import expected_listens

BANDS = [(0, 0), (1, 9), (10, 19), (20, 29), (30, 39), (40, 49), (50, 100)]
KEY_NAMES = ["C", "C♯/D♭", "D", "D♯/E♭", "E", "F", "F♯/G♭", "G", "G♯/A♭", "A", "A♯/B♭", "B"]
LISTEN_BINS_PER_DECADE = 100


def _listen_groups(archive: Archive) -> np.ndarray:
    """Rows of (popularity or -1, tracks, total listens) in narrow log-listen bins."""
    rows = archive.conn.execute(f"""
        SELECT coalesce(popularity, -1),
               CASE WHEN listens IS NULL OR listens < 0 THEN -1
                    ELSE CAST(round(log10(listens + 1) * {LISTEN_BINS_PER_DECADE}) AS INTEGER)
               END AS bin,
               count(*), total(CASE WHEN listens >= 0 THEN listens END)
          FROM tracks GROUP BY 1, 2
    """).fetchall()
    groups = np.array(rows, dtype=np.float64).reshape(-1, 4)
    if not len(groups):
        return np.zeros((0, 3))
    unknown = groups[:, 1] < 0
    pop = np.where(groups[:, 0] < 0, np.nan, groups[:, 0])
    modelled = expected_listens(archive.settings.popularity, pop) * groups[:, 2]
    total = np.where(unknown, modelled, groups[:, 3])
    return np.column_stack([groups[:, 0], groups[:, 2], total])


def coverage_curve(groups: np.ndarray, points: int = 200) -> dict[str, list[float]]:
    """Share of listens held by the top x share of tracks (tracks sorted by listens)."""
    if not len(groups) or groups[:, 2].sum() <= 0:
        return {"tracks": [], "listens": []}
    per_track = groups[:, 2] / groups[:, 1]
    order = np.argsort(-per_track, kind="stable")
    tracks = np.concatenate([[0], np.cumsum(groups[order, 1])]) / groups[:, 1].sum()
    listens = np.concatenate([[0], np.cumsum(groups[order, 2])]) / groups[:, 2].sum()
    xs = np.linspace(0, 1, points + 1)
    return {"tracks": xs.tolist(), "listens": np.interp(xs, tracks, listens).tolist()}


def _share_of_listens_at(curve: dict[str, list[float]], track_share: float) -> float | None:
    if not curve["tracks"]:
        return None
    return float(np.interp(track_share, curve["tracks"], curve["listens"]))


def _tracks_for_listens(curve: dict[str, list[float]], listen_share: float) -> float | None:
    if not curve["tracks"]:
        return None
    return float(np.interp(listen_share, curve["listens"], curve["tracks"]))


def catalog_stats(archive: Archive) -> dict[str, Any]:
    """All figures as plain data (JSON-ready); `plots.render` draws them."""
    conn = archive.conn
    one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
    tracks = one("SELECT count(*) FROM tracks")
    totals = {
        "tracks": tracks, "albums": one("SELECT count(*) FROM albums"),
        "artists": one("SELECT count(*) FROM artists"),
        "track_artist_links": one("SELECT count(*) FROM track_artists"),
        "sources": one("SELECT count(*) FROM sources WHERE status = 'complete'"),
        "distinct_market_lists": one("SELECT count(*) FROM markets"),
        "with_isrc": one("SELECT count(*) FROM tracks WHERE isrc IS NOT NULL"),
        "distinct_isrcs": one("SELECT count(DISTINCT isrc) FROM tracks"),
        "with_popularity": one("SELECT count(*) FROM tracks WHERE popularity IS NOT NULL"),
        "with_listens": one("SELECT count(*) FROM tracks WHERE listens IS NOT NULL"),
    }
    explicit = conn.execute(
        "SELECT count(explicit), total(explicit = 1) FROM tracks").fetchone()
    popularity = dict(conn.execute(
        "SELECT popularity, count(*) FROM tracks WHERE popularity IS NOT NULL GROUP BY 1"))

    groups = _listen_groups(archive)
    total_listens = float(groups[:, 2].sum()) if len(groups) else 0.0
    bands = []
    for low, high in BANDS:
        sel = (groups[:, 0] >= low) & (groups[:, 0] <= high) if len(groups) else []
        n = float(groups[sel, 1].sum()) if len(groups) else 0.0
        listens = float(groups[sel, 2].sum()) if len(groups) else 0.0
        bands.append({"band": f"{low}" if low == high else f"{low}-{high}", "tracks": int(n),
                      "track_share": n / tracks if tracks else None,
                      "listens": listens,
                      "listen_share": listens / total_listens if total_listens else None})
    under = 0.0
    if len(groups):
        per_track = groups[:, 2] / groups[:, 1]
        under = float(groups[per_track < 1000, 1].sum())
    curve = coverage_curve(groups)

    per_album = conn.execute("""
        SELECT min(n, 30), count(*) FROM (
          SELECT count(*) AS n FROM tracks WHERE album_rowid IS NOT NULL GROUP BY album_rowid)
        GROUP BY 1 ORDER BY 1""").fetchall()
    durations = conn.execute("""
        SELECT min(duration_ms / 10000, 90) * 10, count(*) FROM tracks
         WHERE duration_ms IS NOT NULL GROUP BY 1 ORDER BY 1""").fetchall()
    genres = conn.execute("""
        SELECT g.genre, count(*) FROM track_artists ta
          JOIN artist_genres g ON g.artist_rowid = ta.artist_rowid
         WHERE ta.position = 0 GROUP BY g.genre ORDER BY 2 DESC, 1 LIMIT 25""").fetchall()
    keys = conn.execute("""
        SELECT key, mode, count(*) FROM audio_features
         WHERE key BETWEEN 0 AND 11 GROUP BY 1, 2 ORDER BY 1, 2""").fetchall()
    years = conn.execute("""
        SELECT CAST(substr(al.release_date, 1, 4) AS INTEGER) AS y, count(*)
          FROM tracks t JOIN albums al ON al.rowid = t.album_rowid
         WHERE al.release_date IS NOT NULL GROUP BY 1 HAVING y > 1800 ORDER BY 1""").fetchall()
    return {
        "totals": totals,
        "explicit_share": explicit[1] / explicit[0] if explicit[0] else None,
        "popularity_histogram": [[p, popularity.get(p, 0)] for p in range(101)],
        "listens": {
            "total": total_listens,
            "estimated_from_popularity": one(
                "SELECT count(*) FROM tracks WHERE listens IS NULL AND popularity IS NOT NULL"),
            "unknown": one(
                "SELECT count(*) FROM tracks WHERE listens IS NULL AND popularity IS NULL"),
            "share_of_tracks_under_1000": under / tracks if tracks else None,
            "share_held_by_top_37pct_of_tracks": _share_of_listens_at(curve, 0.37),
            "tracks_share_for_99_6pct_of_listens": _tracks_for_listens(curve, 0.996),
            "bands": bands,
            "coverage_curve": curve,
        },
        "tracks_per_album": [list(r) for r in per_album],
        "duration_histogram_10s": [list(r) for r in durations],
        "top_genres": [list(r) for r in genres],
        "keys_modes": [{"key": KEY_NAMES[k], "mode": "major" if m == 1 else "minor", "tracks": n}
                       for k, m, n in keys if m in (0, 1)],
        "release_years": [list(r) for r in years],
        "observed_listens": _observed(archive),
        "loudness": _loudness(conn),
    }


def _loudness(conn) -> dict[str, Any] | None:
    """Analysed loudness by decade and popularity band, flag counts (musicark.analyse)."""
    from musicark.analyse.stats import loudness_stats

    return loudness_stats(conn)


def _observed(archive: Archive) -> dict[str, Any] | None:
    """Imported listening data (musicark.listens), when there is any."""
    from musicark.listens.model import has_listens  # the listens package builds on catalog
    from musicark.listens.stats import listen_stats

    if not has_listens(archive) or not archive.conn.execute(
            "SELECT 1 FROM listen_counts LIMIT 1").fetchone():
        return None
    return listen_stats(archive, top=10)

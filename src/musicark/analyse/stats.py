"""Loudness across the archive for `stats`: the integrated loudness of analysed files by
decade of release and by popularity band (the loudness war, on your own archive), and how
many files each flag was raised on."""

from __future__ import annotations

import sqlite3
from typing import Any

import numpy as np

POPULARITY_BANDS = [(0, 9), (10, 19), (20, 29), (30, 39), (40, 49), (50, 59), (60, 69),
                    (70, 79), (80, 89), (90, 100)]

# One row per (track, analysed file that holds it) with sound: its loudness, its album's
# year and its popularity
ROWS_SQL = """
SELECT a.integrated_lufs, CAST(substr(al.release_date, 1, 4) AS INTEGER), t.popularity
  FROM analyses a JOIN track_files tf ON tf.file_rowid = a.file_id
  JOIN tracks t ON t.rowid = tf.track_rowid LEFT JOIN albums al ON al.rowid = t.album_rowid
 WHERE a.outcome = 'ok' AND a.integrated_lufs IS NOT NULL
"""


def _summary(values: np.ndarray) -> dict[str, Any]:
    p10, median, p90 = np.percentile(values, [10, 50, 90])
    return {"files": int(len(values)), "median_lufs": round(float(median), 2),
            "p10_lufs": round(float(p10), 2), "p90_lufs": round(float(p90), 2)}


def loudness_stats(conn) -> dict[str, Any] | None:
    """None when nothing is analysed (or the catalog predates migration 16)."""
    try:
        analysed = conn.execute("SELECT count(*), total(outcome = 'failed') FROM analyses"
                                ).fetchone()
        flags = dict(conn.execute("SELECT flag, count(*) FROM analysis_flags GROUP BY flag "
                                  "ORDER BY flag"))
        rows = np.array(conn.execute(ROWS_SQL).fetchall(), dtype=float).reshape(-1, 3)
        every = np.array([r[0] for r in conn.execute(
            "SELECT integrated_lufs FROM analyses WHERE integrated_lufs IS NOT NULL")])
    except sqlite3.OperationalError:
        return None
    if not analysed[0]:
        return None
    lufs, years, popularity = rows[:, 0], rows[:, 1], rows[:, 2]
    by_decade = []
    known = years[~np.isnan(years) & (years > 1800)]
    for decade in sorted({int(y) // 10 * 10 for y in known}):
        pick = (years >= decade) & (years < decade + 10)
        by_decade.append({"decade": decade, **_summary(lufs[pick])})
    by_band = []
    for low, high in POPULARITY_BANDS:
        pick = (popularity >= low) & (popularity <= high)
        if pick.any():
            by_band.append({"band": f"{low}-{high}", **_summary(lufs[pick])})
    return {"analysed": analysed[0], "failed": int(analysed[1]),
            "all": _summary(every) if len(every) else None,
            "by_decade": by_decade, "by_popularity": by_band, "flags": flags}

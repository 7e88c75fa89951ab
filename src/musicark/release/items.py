"""What a release ships: one payload file per preserved recording, with the catalog facts
that name it.

A plan (or, without one, every matched track as `original`) gives the tracks and tiers. For
each track the best source file is picked (match score, then bitrate, then size); an opus75
track ships its Opus derivative, and a tagged copy is shipped where `musicark tag` made one
(its restore patch travels with it). Tracks already in an earlier release, tombstoned tracks
and withdrawn files are left out, so a later release only adds.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from musicark.archive import Archive
from musicark.derive.tags import extension
from musicark.errors import BadQuery
from musicark.popularity import expected_listens

# Three statements into keyed temp tables, not one query: as one query SQLite scanned the
# materialized ranking once per eligible track (a LEFT JOIN it could not index: quadratic,
# 100,000 files did not finish in 10 minutes). Each step here is a scan plus key lookups.
ELIGIBLE_SQL = """
CREATE TEMP TABLE release_eligible (
    track_rowid INTEGER PRIMARY KEY, tier TEXT, expected REAL, source_file INTEGER)"""
FILL_ELIGIBLE_SQL = """
INSERT INTO release_eligible(track_rowid, tier, expected)
SELECT w.track_rowid, w.tier, w.expected FROM ({wanted}) w
 WHERE NOT EXISTS (SELECT 1 FROM tombstones ts
                    WHERE ts.kind = 'track' AND ts.ref = w.track_rowid)
   AND NOT EXISTS (SELECT 1 FROM release_tracks rt WHERE rt.track_rowid = w.track_rowid)
"""
BEST_SQL = """
CREATE TEMP TABLE release_best (track_rowid INTEGER PRIMARY KEY, source_file INTEGER)"""
FILL_BEST_SQL = """
INSERT INTO release_best
SELECT track_rowid, source_file FROM (
    SELECT e.track_rowid, f.rowid AS source_file,
           row_number() OVER (PARTITION BY e.track_rowid
                              ORDER BY tf.score DESC, f.bitrate DESC, f.size DESC, f.sha256)
               AS rn
      FROM release_eligible e
      JOIN track_files tf ON tf.track_rowid = e.track_rowid
      JOIN files f ON f.rowid = tf.file_rowid
     WHERE NOT EXISTS (SELECT 1 FROM derivations d WHERE d.output_file = f.rowid
                                                     AND d.input_file != f.rowid)
       -- A file known but not held (a mirror's original) still names what was made from
       -- it (its Opus encode, its tagged copy), which is what the release ships: whether
       -- that is held is checked on the payload file itself.
       AND (f.status = 'ok' OR (f.status = 'absent' AND EXISTS (
            SELECT 1 FROM derivations o WHERE o.input_file = f.rowid
                                          AND o.kind IN ('opus75', 'tagged')))))
 WHERE rn = 1
"""
PICK_SQL = """
CREATE TEMP TABLE release_pick AS
SELECT e.track_rowid, e.tier, e.expected, b.source_file,
       CASE WHEN e.tier = 'opus75' THEN o.output_file ELSE b.source_file END AS body
  FROM release_eligible e
  LEFT JOIN release_best b ON b.track_rowid = e.track_rowid
  LEFT JOIN derivations o ON o.input_file = b.source_file AND o.kind = 'opus75'
"""
PICK_TEMPS = ("release_pick", "release_eligible", "release_best")

WANTED_PLAN = """SELECT track_rowid, tier, expected_listens AS expected FROM plan_items
                  WHERE plan_id = {plan} AND tier IN ('original', 'opus75')"""
WANTED_ALL = """SELECT DISTINCT tf.track_rowid, 'original' AS tier, NULL AS expected
                  FROM track_files tf"""

FACTS_SQL = """
SELECT p.track_rowid, p.tier, p.expected, p.source_file, p.body,
       coalesce(tg.output_file, p.body) AS final, tg.patch_file,
       t.name, t.ext_id, t.mbid, t.isrc, t.disc_number, t.track_number, t.popularity,
       t.listens, s.name, al.rowid, al.name, al.ext_id, substr(al.release_date, 1, 4),
       (SELECT max(t2.disc_number) FROM tracks t2 WHERE t2.album_rowid = al.rowid),
       (SELECT group_concat(name, ', ') FROM (SELECT a.name FROM track_artists ta
          JOIN artists a ON a.rowid = ta.artist_rowid WHERE ta.track_rowid = t.rowid
         ORDER BY ta.position)),
       ff.sha256, ff.size, ff.container, ff.codec, ff.status, ff.licence,
       src.sha256, body.sha256, patch.sha256, patch.size
  FROM release_pick p
  JOIN tracks t ON t.rowid = p.track_rowid
  LEFT JOIN sources s ON s.id = t.source_id
  LEFT JOIN albums al ON al.rowid = t.album_rowid
  LEFT JOIN derivations tg ON tg.input_file = p.body AND tg.kind = 'tagged'
  LEFT JOIN files ff ON ff.rowid = coalesce(tg.output_file, p.body)
  LEFT JOIN files src ON src.rowid = p.source_file
  LEFT JOIN files body ON body.rowid = p.body
  LEFT JOIN files patch ON patch.rowid = tg.patch_file
 WHERE p.body IS NOT NULL
 ORDER BY final, p.track_rowid
"""


@dataclass(slots=True)
class TrackFacts:
    rowid: int
    title: str | None
    ext_id: str | None
    mbid: str | None
    isrc: str | None
    source: str | None
    popularity: int | None
    listens: float


@dataclass(slots=True)
class ReleaseItem:
    """One payload file: a store object and every release track it holds."""

    file_rowid: int
    sha256: str
    size: int
    ext: str
    tier: str
    licence: str | None
    source_sha256: str
    untagged_sha256: str | None = None  # set when the payload is a tagged copy
    patch_sha256: str | None = None
    patch_size: int = 0
    path_fields: dict = field(default_factory=dict)  # of the most popular track
    tracks: list[TrackFacts] = field(default_factory=list)

    @property
    def popularity(self) -> int | None:
        values = [t.popularity for t in self.tracks if t.popularity is not None]
        return max(values) if values else None

    @property
    def listens(self) -> float:
        return float(sum(t.listens for t in self.tracks))


@dataclass
class Selection:
    """Counts of what a release takes and leaves out (the items themselves stream)."""

    files: int = 0
    tracks: int = 0
    bytes: int = 0
    patch_bytes: int = 0  # restore patches shipped beside tagged copies
    skipped: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"files": self.files, "tracks": self.tracks, "bytes": self.bytes,
                "patch_bytes": self.patch_bytes, "skipped": dict(self.skipped)}


def select_items(archive: Archive, plan_id: int | None, selection: Selection
                 ) -> Iterator[ReleaseItem]:
    """The payload of a new release, one item at a time in file order (see the module
    docstring); `selection` counts what is taken and what is left out, and why."""
    conn = archive.conn
    if plan_id is not None:
        if conn.execute("SELECT 1 FROM plans WHERE id = ?", (plan_id,)).fetchone() is None:
            raise BadQuery(f"no plan {plan_id}")
        wanted = WANTED_PLAN.format(plan=int(plan_id))
    else:
        wanted = WANTED_ALL
    for table in PICK_TEMPS:
        conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
    for statement in (ELIGIBLE_SQL, FILL_ELIGIBLE_SQL.format(wanted=wanted), BEST_SQL,
                      FILL_BEST_SQL, PICK_SQL):
        conn.execute(statement)
    conn.execute("DROP TABLE temp.release_eligible")
    conn.execute("DROP TABLE temp.release_best")
    skipped = selection.skipped
    for tier, source in conn.execute(
            "SELECT tier, source_file FROM release_pick WHERE body IS NULL"):
        skipped["planned, but no file in the archive" if source is None
                else f"{tier} not derived yet"] += 1
    cursor = conn.execute(FACTS_SQL)
    item: ReleaseItem | None = None
    while rows := cursor.fetchmany(10_000):
        pops = np.array([np.nan if r[13] is None else r[13] for r in rows], dtype=float)
        known = np.array([np.nan if r[14] is None else r[14] for r in rows], dtype=float)
        model = expected_listens(archive.settings.popularity, pops, known)
        for row, modelled in zip(rows, model, strict=True):
            (track, tier, expected, _source, body, final, _patch, title, ext_id, mbid, isrc,
             disc, number, popularity, _listens, source_name, album_rowid, album, album_ext,
             year, discs, artists, sha, size, container, codec, status, licence, source_sha,
             body_sha, patch_sha, patch_size) = row
            if status != "ok":
                skipped["file not held here (known from a release)" if status == "absent"
                        else f"file {status}"] += 1
                continue
            facts = TrackFacts(track, title, ext_id, mbid, isrc, source_name, popularity,
                               float(expected) if expected is not None else float(modelled))
            if item is None or item.file_rowid != final:
                if item is not None:
                    yield _counted(item, selection)
                # An opus75 track whose encode was no larger ships its original.
                shipped = "original" if body == _source else tier
                item = ReleaseItem(
                    final, sha, size, extension(container, codec) or "bin", shipped, licence,
                    source_sha, body_sha if patch_sha else None, patch_sha, patch_size or 0)
            item.tracks.append(facts)
            if max(item.tracks, key=_priority) is facts:
                item.path_fields = {
                    "artist": artists, "album": album,
                    "album_id": album_ext or (f"album-{album_rowid}" if album_rowid
                                              else "none"),
                    "year": year if year and year.isdigit() and year != "0000" else None,
                    "disc": disc, "number": number, "discs": discs or 1, "title": title}
    if item is not None:
        yield _counted(item, selection)
    conn.execute("DROP TABLE temp.release_pick")


def _counted(item: ReleaseItem, selection: Selection) -> ReleaseItem:
    selection.files += 1
    selection.tracks += len(item.tracks)
    selection.bytes += item.size
    selection.patch_bytes += item.patch_size
    return item


def _priority(track: TrackFacts) -> tuple:
    """The track that names a shared payload file: most popular, then oldest row."""
    return (track.popularity if track.popularity is not None else -1, -track.rowid)


def tracks_json(item: ReleaseItem) -> list[dict]:
    return [{"track": f"track:{t.rowid}", "source": t.source, "ext_id": t.ext_id,
             "isrc": t.isrc, "mbid": t.mbid, "title": t.title, "popularity": t.popularity,
             "expected_listens": round(t.listens, 3)} for t in item.tracks]


def dumps(obj) -> str:
    """Canonical JSON (sorted keys, no spaces): byte-identical for the same data."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def item_to_json(item: ReleaseItem) -> str:
    """A compact, canonical record of an item (staged on disk while a release is laid out)."""
    return dumps([item.file_rowid, item.sha256, item.size, item.ext, item.tier, item.licence,
                  item.source_sha256, item.untagged_sha256, item.patch_sha256,
                  item.patch_size, [[t.rowid, t.title, t.ext_id, t.mbid, t.isrc, t.source,
                                     t.popularity, t.listens] for t in item.tracks]])


def item_from_json(text: str) -> ReleaseItem:
    (rowid, sha, size, ext, tier, licence, source_sha, untagged, patch, patch_size,
     tracks) = json.loads(text)
    return ReleaseItem(rowid, sha, size, ext, tier, licence, source_sha, untagged, patch,
                       patch_size, tracks=[TrackFacts(*t) for t in tracks])

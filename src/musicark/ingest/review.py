"""Matching a person can steer: review the doubtful matches of a batch that has run, then
accept or reject them (like beets' import choices, after the fact).

A decision is recorded in `match_decisions` and, for an accepted link, as a `track_files`
row with method "manual"; automatic runs (`match --rematch` included) never change either.
"""

from __future__ import annotations

import json
from typing import Any

from musicark.archive import Archive, utc_now
from musicark.catalog.search import resolve, summaries
from musicark.db import transaction
from musicark.errors import BadQuery, NotInCatalog
from musicark.ingest.match import MARGIN, THRESHOLD, _fuzzy
from musicark.ingest.paths import shown
from musicark.release.withdraw import SHA256

LOW_SCORE = 0.9  # automatic links below this are shown for review
AUTOMATIC = ("fuzzy", "resolved", "fingerprint")


def file_rowid(archive: Archive, ref: str) -> int:
    """`file:N`, `N`, a SHA-256 or a unique SHA-256 prefix of 8+ hex digits."""
    text = ref.strip().lower().removeprefix("sha256:")
    if text.startswith("file:"):
        text = text[5:]
    conn = archive.conn
    if text.isascii() and text.isdigit() and len(text) < 19:  # not '²' or Arabic-Indic
        row = conn.execute("SELECT rowid FROM files WHERE rowid = ?", (int(text),)).fetchone()
    elif SHA256.fullmatch(text):
        row = conn.execute("SELECT rowid FROM files WHERE sha256 = ?", (text,)).fetchone()
    elif len(text) >= 8 and all(c in "0123456789abcdef" for c in text):
        rows = conn.execute("SELECT rowid FROM files WHERE sha256 >= ? AND sha256 < ? LIMIT 2",
                            (text, text + "g")).fetchall()
        if len(rows) > 1:
            raise BadQuery(f"{ref!r} names more than one file: give more of its SHA-256")
        row = rows[0] if rows else None
    else:
        raise BadQuery(f"not a file reference: {ref!r} (file:N, a SHA-256 or its first 8+ "
                       "hex digits)")
    if row is None:
        raise NotInCatalog(f"no file {ref} in the ledger")
    return row[0]


def _file_facts(archive: Archive, rowid: int) -> dict[str, Any]:
    sha, common, duration, status = archive.conn.execute(
        "SELECT sha256, common, duration_ms, status FROM files WHERE rowid = ?",
        (rowid,)).fetchone()
    path = archive.conn.execute(
        "SELECT path FROM file_paths WHERE file_rowid = ? ORDER BY seen_at DESC LIMIT 1",
        (rowid,)).fetchone()
    tags = json.loads(common) if common else {}
    return {"file": rowid, "sha256": sha, "path": shown(path[0]) if path else None,
            "status": status,
            "title": tags.get("title"), "artists": tags.get("artists"),
            "album": tags.get("album"), "duration_ms": duration}


def review(archive: Archive, *, limit: int = 50, below: float = LOW_SCORE) -> dict[str, list]:
    """Doubtful matches, each with its candidates, scores and why it is shown:
    automatic links scoring below `below`, and unmatched files (ambiguous candidates, or a
    best candidate under the threshold). Files with a decision are not shown again."""
    if not 1 <= limit <= 10_000:
        raise BadQuery("limit must be between 1 and 10000")
    if not below >= 0:  # NaN too: it would silently show nothing (above 1: every link)
        raise BadQuery(f"below must be a score of 0 or more, not {below}")
    conn = archive.conn
    decided = "SELECT file_rowid FROM match_decisions"
    low = []
    for file, track, method, score in conn.execute(
            f"SELECT file_rowid, track_rowid, method, score FROM track_files "
            f"WHERE method IN {AUTOMATIC} AND coalesce(score, 0) < ? "
            f"AND file_rowid NOT IN ({decided}) ORDER BY score, file_rowid LIMIT ?",
            (below, limit)):
        low.append({**_file_facts(archive, file), "why": f"{method} match scored "
                    f"{score or 0:.2f}, below {below:.2f}",
                    "candidates": [{**_brief(summaries(archive, [track])[0]),
                                    "score": score, "linked": True}]})
    doubtful = []
    for (file,) in conn.execute(
            "SELECT rowid FROM files WHERE status = 'ok' AND rowid NOT IN "
            "(SELECT file_rowid FROM track_files) "
            f"AND rowid NOT IN ({decided}) AND rowid NOT IN (SELECT output_file FROM "
            "derivations WHERE output_file != input_file UNION SELECT patch_file FROM "
            "derivations WHERE patch_file IS NOT NULL) ORDER BY rowid").fetchall():
        if len(doubtful) >= limit:
            break
        facts = _file_facts(archive, file)
        tags = {"title": facts["title"], "artists": facts["artists"] or [],
                "album": facts["album"]}
        found = _fuzzy(archive, tags, facts["duration_ms"])[:5]
        if not facts["title"]:
            why = "unmatched: its tags have no title to search for"
        elif not found:
            why = "unmatched: no catalog track shares its title words"
        elif found[0]["score"] < THRESHOLD:
            why = (f"unmatched: the best candidate scores {found[0]['score']:.2f}, below "
                   f"the threshold {THRESHOLD:.2f}")
        elif len(found) > 1 and found[0]["score"] - found[1]["score"] < MARGIN:
            why = (f"ambiguous: the two best candidates score {found[0]['score']:.2f} and "
                   f"{found[1]['score']:.2f}")
        else:
            why = "unmatched: run `musicark match` (it would be linked now)"
        doubtful.append({**facts, "why": why,
                         "candidates": [{**_brief(c), "score": c["score"], "linked": False}
                                        for c in found]})
    return {"low_confidence": low, "unmatched": doubtful}


def _brief(track: dict[str, Any]) -> dict[str, Any]:
    return {"track": f"track:{track['rowid']}", "name": track.get("name"),
            "artists": track.get("artists"), "album": track.get("album"),
            "duration_ms": track.get("duration_ms")}


def accept(archive: Archive, file_ref: str, track_ref: str) -> dict[str, Any]:
    """Link a file to a track by hand; the file's automatic links give way to it."""
    file = file_rowid(archive, file_ref)
    entity, track = resolve(archive, track_ref)
    if entity != "track":
        raise BadQuery(f"{track_ref!r} is {entity}:{track}, not a track")
    if archive.conn.execute("SELECT 1 FROM tracks WHERE rowid = ?", (track,)).fetchone() is None:
        raise NotInCatalog(f"no track {track_ref} in the catalog")
    status = archive.conn.execute("SELECT status FROM files WHERE rowid = ?",
                                  (file,)).fetchone()[0]
    if status != "ok":
        raise BadQuery(f"file:{file} is {status}: only ok files are matched")
    now = utc_now()
    with transaction(archive.conn):
        conn = archive.conn
        conn.execute("DELETE FROM track_files WHERE file_rowid = ? AND method != 'manual'",
                     (file,))
        conn.execute("INSERT OR REPLACE INTO track_files(track_rowid, file_rowid, method, "
                     "score) VALUES (?, ?, 'manual', 1.0)", (track, file))
        conn.execute("INSERT OR REPLACE INTO match_decisions VALUES (?, 'accept', ?, ?)",
                     (file, track, now))
        _event(archive, now, file, "accepted", {"track": track})
    return {"file": file, "track": track, "decision": "accept"}


def reject(archive: Archive, file_ref: str) -> dict[str, Any]:
    """Unlink a file from every track and keep automatic matching away from it."""
    file = file_rowid(archive, file_ref)
    now = utc_now()
    with transaction(archive.conn):
        conn = archive.conn
        removed = [t for (t,) in conn.execute(
            "SELECT track_rowid FROM track_files WHERE file_rowid = ?", (file,))]
        conn.execute("DELETE FROM track_files WHERE file_rowid = ?", (file,))
        conn.execute("INSERT OR REPLACE INTO match_decisions VALUES (?, 'reject', NULL, ?)",
                     (file, now))
        _event(archive, now, file, "rejected", {"unlinked_tracks": removed})
    return {"file": file, "decision": "reject", "unlinked_tracks": removed}


def _event(archive: Archive, now: str, file: int, outcome: str, detail: dict) -> None:
    archive.conn.execute(
        "INSERT INTO events(at, kind, subject, outcome, detail) VALUES (?, ?, ?, ?, ?)",
        (now, "catalog.match.manual", f"file:{file}", outcome, json.dumps(detail)))

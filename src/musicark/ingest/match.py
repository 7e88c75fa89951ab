"""Match ledger files to catalog tracks: identifiers first, then fuzzy metadata, then sound.

Order and weights follow Picard's spirit (identifiers ≫ title > length > album/artist):
1. ISRC from the tags → every track with that ISRC (method `isrc`, score 1);
2. MusicBrainz recording id → tracks with that MBID (`mbid`, 1);
3. fuzzy title/artist/album/length over full-text candidates (`fuzzy`, the weighted score),
   only when the best is ≥ THRESHOLD and clearly ahead of the next (else "ambiguous": the
   resolver decides; the default leaves it unmatched and reports it);
4. a file with no link that sounds like a linked file (same near-duplicate group) takes that
   file's links (`fingerprint`, the group score).
Below the threshold nothing is guessed.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz

from musicark.archive import Archive, utc_now
from musicark.catalog.search import candidates

WEIGHTS = {"title": 13.0, "length": 10.0, "album": 5.0, "artist": 4.0}
THRESHOLD = 0.80
MARGIN = 0.03
LENGTH_FULL_MS = 2_000  # within 2 s: full length score
LENGTH_ZERO_MS = 30_000  # 30 s apart: none

Resolver = Callable[[dict, list[dict]], int | None]
"""Given a file's common tags and scored candidates, return the chosen track rowid or None."""


def leave_unmatched(file: dict, candidates: list[dict]) -> int | None:
    return None


@dataclass
class MatchReport:
    matched: Counter = field(default_factory=Counter)
    ambiguous: list[dict] = field(default_factory=list)
    unmatched: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"matched": dict(self.matched), "matched_files": sum(self.matched.values()),
                "ambiguous": self.ambiguous, "unmatched": self.unmatched}


def _plain(text: str | None) -> str:
    text = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in text if not unicodedata.combining(c)).casefold().strip()


def score(tags: dict, duration_ms: int | None, track: dict) -> float:
    """Weighted similarity of a file's tags and a catalog track, 0..1."""
    parts: dict[str, float] = {
        "title": fuzz.token_sort_ratio(_plain(tags.get("title")), _plain(track["name"])) / 100}
    artists = tags.get("artists") or []
    if artists and track.get("artists"):
        parts["artist"] = fuzz.token_set_ratio(_plain(" ".join(artists)),
                                               _plain(track["artists"])) / 100
    if tags.get("album") and track.get("album"):
        parts["album"] = fuzz.token_sort_ratio(_plain(tags["album"]), _plain(track["album"])) / 100
    if duration_ms and track.get("duration_ms"):
        delta = abs(duration_ms - track["duration_ms"])
        parts["length"] = max(0.0, min(1.0, (LENGTH_ZERO_MS - delta) /
                                       (LENGTH_ZERO_MS - LENGTH_FULL_MS)))
    weight = sum(WEIGHTS[k] for k in parts)
    return sum(WEIGHTS[k] * v for k, v in parts.items()) / weight


def _fuzzy(archive: Archive, tags: dict, duration_ms: int | None) -> list[dict]:
    title = tags.get("title")
    if not title:
        return []
    artists = " ".join(tags.get("artists") or [])
    hits = candidates(archive, title, artists)
    scored = [{**hit, "score": round(score(tags, duration_ms, hit), 4)} for hit in hits]
    return sorted(scored, key=lambda h: -h["score"])


@dataclass
class Outcome:
    """What matching one set of tags found: links (track rowid, score) and how."""

    links: list[tuple[int, float]]
    method: str | None
    candidates: list[dict] = field(default_factory=list)  # the best fuzzy ones, when fuzzy ran
    ambiguous: bool = False


def match_tags(archive: Archive, tags: dict, duration_ms: int | None, *,
               resolver: Resolver = leave_unmatched,
               order: tuple[str, ...] = ("isrc", "mbid")) -> Outcome:
    """Identifiers (in `order`), then fuzzy title/artist/album/length: the matcher ingest
    and listens share. Ambiguous fuzzy results go to the resolver; unresolved, no links."""
    links, method = _by_identifiers(archive.conn, tags, order)
    if links:
        return Outcome(links, method)
    candidates = _fuzzy(archive, tags, duration_ms)
    best = candidates[0] if candidates else None
    if not best or best["score"] < THRESHOLD:
        return Outcome([], None, candidates[:5])
    runner_up = candidates[1]["score"] if len(candidates) > 1 else 0.0
    if best["score"] - runner_up >= MARGIN:
        return Outcome([(best["rowid"], best["score"])], "fuzzy", candidates[:5])
    pick = resolver(tags, candidates[:5])
    if pick is not None:
        return Outcome([(pick, next(c["score"] for c in candidates if c["rowid"] == pick))],
                       "resolved", candidates[:5])
    return Outcome([], None, candidates[:5], ambiguous=True)


def match_files(archive: Archive, *, rematch: bool = False,
                resolver: Resolver = leave_unmatched,
                unchecked_only: bool = False) -> MatchReport:
    """Link ok ingested files to tracks; with `rematch`, recompute every automatic link;
    with `unchecked_only`, look only at files no matching has seen (what ingest does, so it
    does not re-run fuzzy matching over files that stay unmatched).
    Files musicark made itself (Opus encodes, tagged copies, patches) are never matched:
    they reach their tracks through their derivation."""
    conn = archive.conn
    report = MatchReport()
    if rematch:
        conn.execute("DELETE FROM track_files WHERE method != 'manual'")
    files = conn.execute(
        "SELECT rowid, common, duration_ms FROM files WHERE status = 'ok' AND rowid NOT IN "
        "(SELECT file_rowid FROM track_files) AND rowid NOT IN (SELECT output_file FROM "
        "derivations WHERE output_file != input_file "
        "UNION SELECT patch_file FROM derivations WHERE patch_file IS NOT NULL) "
        "AND rowid NOT IN (SELECT file_rowid FROM match_decisions WHERE decision = 'reject') "
        "AND (:all OR match_checked_at IS NULL) ORDER BY rowid",
        {"all": not unchecked_only}).fetchall()
    unresolved = []
    for rowid, common, duration_ms in files:
        tags = json.loads(common) if common else {}
        outcome = match_tags(archive, tags, duration_ms, resolver=resolver)
        links, method = outcome.links, outcome.method
        if outcome.ambiguous:
            report.ambiguous.append({"file": rowid, "title": tags.get("title"),
                                     "candidates": _brief(outcome.candidates)})
            continue
        if links:
            _link(conn, rowid, links, method)
            report.matched[method] += 1
        else:
            unresolved.append((rowid, tags))
    for rowid, tags in unresolved:
        links = _by_sound(conn, rowid)
        if links:
            _link(conn, rowid, links, "fingerprint")
            report.matched["fingerprint"] += 1
        else:
            report.unmatched.append({"file": rowid, "title": tags.get("title"),
                                     "artists": tags.get("artists")})
    conn.executemany("UPDATE files SET match_checked_at = ? WHERE rowid = ?",
                     [(utc_now(), rowid) for rowid, _, _ in files])
    archive.record_event("catalog.match", None, "ok", {"matched": dict(report.matched),
                         "ambiguous": len(report.ambiguous), "unmatched": len(report.unmatched)})
    return report


IDENTIFIER_SQL = {
    "isrc": "SELECT rowid FROM tracks WHERE isrc = ?",
    "mbid": "SELECT rowid FROM tracks WHERE mbid = ?",
    "ext_id": "SELECT rowid FROM tracks WHERE ext_id = ?",
}
IDENTIFIER_TAGS = {"isrc": "isrc", "mbid": "musicbrainz_recording_id", "ext_id": "ext_id"}


def _by_identifiers(conn, tags: dict, order: tuple[str, ...] = ("isrc", "mbid")
                    ) -> tuple[list[tuple[int, float]], str | None]:
    """Tracks sharing an identifier with the tags: ISRC, recording MBID or (for listens)
    the source's own track id, tried in `order`."""
    for kind in order:
        value = tags.get(IDENTIFIER_TAGS[kind])
        if not value:
            continue
        if kind == "mbid":
            value = value.strip().lower()
        rows = conn.execute(IDENTIFIER_SQL[kind], (value,)).fetchall()
        if rows:
            return [(r[0], 1.0) for r in rows], kind
    return [], None


def _by_sound(conn, rowid: int) -> list[tuple[int, float]]:
    """Links of files in the same near-duplicate group."""
    return conn.execute(
        "SELECT DISTINCT tf.track_rowid, coalesce(g.score, 1.0) FROM file_groups g "
        "JOIN file_groups other ON other.group_rowid = g.group_rowid "
        "JOIN track_files tf ON tf.file_rowid = other.file_rowid "
        "WHERE g.file_rowid = ? AND other.file_rowid != ?", (rowid, rowid)).fetchall()


def _link(conn, file_rowid: int, links: list[tuple[int, float]], method: str) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO track_files(track_rowid, file_rowid, method, score) "
        "VALUES (?, ?, ?, ?)", [(t, file_rowid, method, s) for t, s in links])


def _brief(candidates: list[dict]) -> list[dict[str, Any]]:
    return [{"track": c["rowid"], "name": c["name"], "artists": c.get("artists"),
             "score": c["score"]} for c in candidates]

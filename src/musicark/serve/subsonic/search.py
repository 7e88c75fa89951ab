"""search2 and search3 over the catalog's full-text index, restricted to songs (tracks with
a playable file). An empty query lists everything in a stable order, paged: that is how
clients such as Symfonium and Substreamer sync a library."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from musicark.catalog.search import (
    MAX_QUERY_CHARS,
    SEARCH_POOL,
    _folded_words,
    _words,
    fts_query,
    tier_function,
)
from musicark.catalog.writer import SEARCH_KEY_BITS
from musicark.serve.subsonic import entries
from musicark.serve.subsonic.responses import GENERIC, SubsonicError

if TYPE_CHECKING:
    from musicark.serve.subsonic.call import Call

MAX_COUNT = 500
MAX_SEARCH_OFFSET = 10_000
MASK = (1 << SEARCH_KEY_BITS) - 1
SONG_MATCH_SQL = f"""
SELECT f.rowid, t.name FROM track_fts f JOIN tracks t ON t.rowid = (f.rowid & {MASK})
 WHERE track_fts MATCH ? ORDER BY f.rowid LIMIT ?
"""


def _counts(call: Call, kind: str) -> tuple[int, int]:
    count = call.int(f"{kind}Count", 20, 0, MAX_COUNT) or 0
    offset = call.int(f"{kind}Offset", 0, 0, 2**31) or 0
    return count, offset


def _everything(call: Call) -> tuple[list[int], list[int], list[dict[str, Any]]]:
    snap = call.snap
    (ac, ao), (lc, lo), (sc, so) = (_counts(call, k) for k in ("artist", "album", "song"))
    artists = snap.artist_ids[ao:ao + ac]
    albums = snap.album_ids[lo:lo + lc]
    return artists, albums, entries.songs(call.archive, snap.songs[so:so + sc])


ALBUM_MATCH_SQL = f"""
SELECT t.album_rowid FROM track_fts f JOIN tracks t ON t.rowid = (f.rowid & {MASK})
 WHERE track_fts MATCH ? ORDER BY f.rowid LIMIT ?
"""
ARTIST_MATCH_SQL = f"""
SELECT ta.artist_rowid, a.name FROM track_fts f
  JOIN track_artists ta ON ta.track_rowid = (f.rowid & {MASK})
  JOIN artists a ON a.rowid = ta.artist_rowid
 WHERE track_fts MATCH ? ORDER BY f.rowid LIMIT ?
"""
SCAN_LIMIT = 4000  # matching tracks read at most to find albums or artists
SONG_SCAN_LIMIT = 50_000  # matching tracks read at most to find a pool of songs


def _queries(text: str) -> list[str]:
    """Whole words first, then the last word as a prefix (as catalog search does: a prefix
    of 5+ letters has no prefix index and costs a doclist merge)."""
    return list(dict.fromkeys(q for q in (fts_query(text, prefix=False), fts_query(text))
                              if q))


def _song_matches(call: Call, text: str, pool: int) -> list[tuple[int, str]]:
    """The `pool` most popular matches that are songs: the catalog's search streamed and
    filtered against the snapshot (a bisection per row, no ledger query)."""
    is_song = call.snap.is_song
    found: list[tuple[int, str]] = []
    for query in _queries(text):
        found = []
        for key, name in call.archive.conn.execute(SONG_MATCH_SQL, (query, SONG_SCAN_LIMIT)):
            if is_song(key & MASK):
                found.append((key, name))
                if len(found) >= pool:
                    return found
    return found


def _distinct(call: Call, sql: str, text: str, column: str, wanted: int, keep) -> dict:
    """The first `wanted` distinct entities of the matching tracks (most popular first) that
    `keep` accepts, reading matches as a stream and stopping there."""
    seen: dict = {}
    for query in _queries(text):
        seen = {}
        for row in call.archive.conn.execute(sql, (f"{column} : ({query})", SCAN_LIMIT)):
            if row[0] not in seen and keep(row):
                seen[row[0]] = row
                if len(seen) >= wanted:
                    return seen
    return seen


def _found(call: Call, text: str) -> tuple[list[int], list[int], list[dict[str, Any]]]:
    if len(text) > MAX_QUERY_CHARS:
        raise SubsonicError(GENERIC, f"query is limited to {MAX_QUERY_CHARS} characters")
    if fts_query(text) is None:
        return [], [], []
    snap = call.snap
    tier = tier_function(_folded_words(" ".join(_words(text))), True)
    (ac, ao), (lc, lo), (sc, so) = (_counts(call, k) for k in ("artist", "album", "song"))
    so, lo, ao = (min(o, MAX_SEARCH_OFFSET) for o in (so, lo, ao))
    songs: list[int] = []
    if sc:
        found = _song_matches(call, text, max(SEARCH_POOL, 2 * (so + sc)))
        ranked = sorted(((tier(name), key & MASK) for key, name in found),
                        key=lambda r: r[0])  # stable: popularity order within a tier
        songs = [r for _, r in ranked[so:so + sc]]
    albums: list[int] = []
    if lc:
        seen = _distinct(call, ALBUM_MATCH_SQL, text, "album", lo + lc,
                         lambda row: row[0] in snap.albums)
        albums = sorted(seen, key=lambda a: tier(snap.albums[a].name))[lo:lo + lc]
    artists: list[int] = []
    if ac:
        names = _distinct(call, ARTIST_MATCH_SQL, text, "artists", ao + ac,
                          lambda row: tier(row[1]) < 2)
        artists = sorted(names, key=lambda a: tier(names[a][1]))[ao:ao + ac]
    return artists, albums, entries.songs(call.archive, songs)


def _search(call: Call) -> tuple[list[int], list[int], list[dict[str, Any]]]:
    text = (call.get("query") or "").strip()
    if text in ("", '""', "''", "*"):
        return _everything(call)
    return _found(call, text)


def _artist_entry(call: Call, rowid: int) -> dict[str, Any]:
    entry = entries.artist(call.snap, rowid)
    if not entry["name"]:
        row = call.archive.conn.execute("SELECT name FROM artists WHERE rowid = ?",
                                        (rowid,)).fetchone()
        entry["name"] = (row and row[0]) or ""
    return entry


def search3(call: Call) -> dict[str, Any]:
    artists, albums, songs = _search(call)
    return {"searchResult3": {"artist": [_artist_entry(call, a) for a in artists],
                              "album": entries.albums(call.snap, albums), "song": songs}}


def search2(call: Call) -> dict[str, Any]:
    artists, albums, songs = _search(call)
    return {"searchResult2": {
        "artist": [{"id": f"ar-{a}", "name": _artist_entry(call, a)["name"]} for a in artists],
        "album": entries.albums(call.snap, albums), "song": songs}}


METHODS = {"search2": search2, "search3": search3}

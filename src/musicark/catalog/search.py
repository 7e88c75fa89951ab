"""Full-text search, identifier lookups, detail views and uniform shuffle over the catalog."""

from __future__ import annotations

import functools
import json
import random
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from rapidfuzz import fuzz

from musicark.archive import Archive
from musicark.catalog import ranking
from musicark.catalog import terms as terms_of_index
from musicark.catalog.writer import SEARCH_KEY_BITS
from musicark.errors import BadQuery, NotInCatalog

MAX_QUERY_CHARS = 500
MAX_LIMIT = 1000
MAX_BATCH = 1000
MAX_OFFSET = 10_000
SEARCH_POOL = 400  # most popular matches that are scored (match quality + popularity)
WORD_RE = re.compile(r"[^\W_]+")  # unicode61: letters and digits

ISRC_RE = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")
BARCODE_RE = re.compile(r"^\d{8}$|^\d{12,14}$")
MBID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

TRACK_SUMMARY_SQL = """
SELECT t.rowid AS rowid, t.ext_id AS id, t.mbid, t.name, t.isrc, t.popularity, t.listens,
       t.duration_ms, t.explicit,
       (SELECT group_concat(name, ', ') FROM (SELECT a.name FROM track_artists ta
          JOIN artists a ON a.rowid = ta.artist_rowid
         WHERE ta.track_rowid = t.rowid ORDER BY ta.position)) AS artists,
       al.name AS album, al.rowid AS album_rowid, substr(al.release_date, 1, 4) AS year
  FROM tracks t LEFT JOIN albums al ON al.rowid = t.album_rowid
"""
ALBUM_SUMMARY_SQL = """
SELECT al.rowid AS rowid, al.ext_id AS id, al.mbid, al.name, al.album_type, al.release_date,
       al.upc, al.label, al.total_tracks, al.popularity,
       (SELECT group_concat(name, ', ') FROM (SELECT a.name FROM album_artists aa
          JOIN artists a ON a.rowid = aa.artist_rowid
         WHERE aa.album_rowid = al.rowid ORDER BY aa.position)) AS artists
  FROM albums al
"""
ARTIST_SUMMARY_SQL = """
SELECT ar.rowid AS rowid, ar.ext_id AS id, ar.mbid, ar.name, ar.sort_name, ar.popularity,
       ar.followers
  FROM artists ar
"""


def _quote(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _words(text: str) -> list[str]:
    # NUL would end an FTS5 string early; tags from files do contain it.
    return [w for w in text.replace("\x00", " ").split() if any(c.isalnum() for c in w)]


def fts_query(text: str, *, prefix: bool = True) -> str | None:
    """Turn user text into a safe FTS5 query: every word is a quoted string, ANDed together.

    Quotes, `*`, `-`, `NEAR`, `AND`, `OR`, parentheses and colons in the text are only words
    (or separators) this way, never query syntax. The last word matches as a prefix.
    """
    words = _words(text)
    if not words:
        return None
    quoted = [_quote(w) for w in words]
    if prefix:
        quoted[-1] += "*"
    return " ".join(quoted)


@functools.lru_cache(maxsize=65536)
def _folded_words(text: str) -> tuple[str, ...]:
    """Words as the unicode61 tokenizer sees them: case-folded, diacritics removed.
    Cached: every search folds its pool's 400 titles, and popular titles recur."""
    if text.isascii():
        return tuple(WORD_RE.findall(text.lower()))
    plain = "".join(c for c in unicodedata.normalize("NFKD", text)
                    if not unicodedata.combining(c)).casefold()
    return tuple(WORD_RE.findall(plain))


def tier_function(words: tuple[str, ...] | list[str], prefix: bool
                  ) -> Callable[[str | None], int]:
    """`tier(name)` for one query: 0 when the title starts with the words, 1 when it holds
    every word, 2 otherwise; the last word matches as a prefix when `prefix` (as in the FTS
    query). Built once per query; the web search uses it to offer the artists and albums
    whose names hold the words (track ranking is `ranking.score`)."""
    n = len(words)
    if not n:
        return lambda name: 2
    head, last = tuple(words[:-1]), words[-1]
    if n == 1 and prefix:  # the common case, kept to a few operations per title
        def tier(name: str | None) -> int:
            title = _folded_words(name or "")
            if title and title[0].startswith(last):
                return 0
            return 1 if any(t.startswith(last) for t in title) else 2
        return tier

    def fits(token: str) -> bool:
        return token.startswith(last) if prefix else token == last

    def tier(name: str | None) -> int:
        title = _folded_words(name or "")
        if len(title) >= n and title[:n - 1] == head and fits(title[n - 1]):
            return 0
        tokens = set(title)
        if all(w in tokens for w in head) and any(fits(t) for t in tokens):
            return 1
        return 2
    return tier


def utf8_text(text: str, what: str) -> str:
    """Refuse text that is not Unicode (bytes that were not UTF-8 reach Python's argv as lone
    surrogates, which SQLite cannot take)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadQuery(f"{what} {text!r} is not valid UTF-8 text") from None
    return text


def _rows(cur) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    if "explicit" in names:
        for row in rows:
            if row["explicit"] is not None:
                row["explicit"] = bool(row["explicit"])
    return rows


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise BadQuery(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


TYPO_MIN_SIMILARITY = 70  # mean rapidfuzz ratio of the words, for a retry with beginnings
MASK = (1 << SEARCH_KEY_BITS) - 1

PRESERVED_SQL = (f"EXISTS (SELECT 1 FROM track_files tf JOIN files fl ON fl.rowid = "
                 f"tf.file_rowid WHERE tf.track_rowid = (f.rowid & {MASK}) "
                 f"AND fl.status = 'ok')")
OTHER_FIELDS_SQL = """
SELECT t.rowid, al.name,
       (SELECT group_concat(name, ' ') FROM (SELECT a.name FROM track_artists ta
          JOIN artists a ON a.rowid = ta.artist_rowid WHERE ta.track_rowid = t.rowid
         ORDER BY ta.position))
  FROM tracks t LEFT JOIN albums al ON al.rowid = t.album_rowid WHERE t.rowid IN ({marks})
"""


def _pool(archive: Archive, fts: str, limit: int, preserved_only: bool = False
          ) -> list[tuple[int, str | None]]:
    """(search key, title) of the `limit` most popular tracks matching `fts` (holding an ok
    file, with `preserved_only`): the FTS streams keys in popularity order, each joined to
    its title, in one statement that stops after `limit`."""
    held = f"AND {PRESERVED_SQL} " if preserved_only else ""
    return archive.conn.execute(
        f"SELECT f.rowid, t.name FROM track_fts f JOIN tracks t ON t.rowid = (f.rowid & {MASK}) "
        f"WHERE track_fts MATCH ? {held}ORDER BY f.rowid LIMIT ?", (fts, limit)).fetchall()


def _other_fields(archive: Archive, rowids: list[int]) -> dict[int, tuple]:
    """Folded artist and album words of these tracks (fetched only for the candidates whose
    title lacks a word of the query: elsewhere they cannot change the score)."""
    if not rowids:
        return {}
    rows = archive.conn.execute(OTHER_FIELDS_SQL.format(marks=",".join("?" * len(rowids))),
                                rowids).fetchall()
    return {rowid: (_folded_words(artists or ""), _folded_words(album or ""))
            for rowid, album, artists in rows}


def _typo_query(words: tuple[str, ...]) -> str | None:
    """Word beginnings (3 letters) as prefixes: a retry for a query with a typo."""
    heads = [w[:3] for w in words if len(w) >= 4]
    if not heads or len(heads) < len(words):
        return None
    return " ".join(f"{_quote(h)}*" for h in heads)


def _word_similarity(words: tuple[str, ...], tokens: tuple[str, ...]) -> float:
    """Mean over the query's words of the best rapidfuzz ratio with any token (0-100)."""
    if not words or not tokens:
        return 0.0
    return sum(max(fuzz.ratio(w, t) for t in tokens) for w in words) / len(words)


def _typo_score(words: tuple[str, ...], fields: tuple, popularity: int) -> float | None:
    similarity = _word_similarity(words, fields[0] + fields[1])
    if similarity < TYPO_MIN_SIMILARITY:
        return None
    # As the exact-title bonus: the whole query close to the whole title.
    close = fuzz.ratio(" ".join(words), " ".join(fields[0])) >= 85
    return (ranking.MATCH_WEIGHT * similarity / 100 + ranking.EXACT_TITLE * close
            + ranking.POPULARITY_WEIGHT * popularity / 100)


def _expanded_query(archive: Archive, text: str) -> str | None:
    """`fts_query(text)` with its last word, a prefix longer than the FTS prefix indexes,
    written as an OR of the index's terms in its range (the same matches, streamed in
    popularity order instead of merged whole first); None where that does not apply."""
    words = _words(text)
    last = words[-1] if words else ""
    if _folded_words(last) != (last.lower(),):  # only plain letters and digits
        return None
    terms = terms_of_index.expand(archive.conn, last.lower())
    if terms is None:
        return None
    if not terms:  # no term starts with it: nothing matches
        return fts_query(text, prefix=False)
    head = [_quote(w) for w in words[:-1]]
    return " AND ".join([*head, "(" + " OR ".join(_quote(t) for t in terms) + ")"])


def _ranked(archive: Archive, text: str, pool: int, *, prefix: bool = True,
            preserved_only: bool = False) -> list[tuple[int, int, int]]:
    """(rank, search key, track rowid) of the best matches, best first. Candidates are the
    `pool` most popular matches, scored by `ranking` (match quality and popularity in one
    score); ties keep popularity order. (Adding the best title-start matches beyond the
    pool, with an FTS `^` query, cost 25-40 ms for common words at 10 M tracks.)"""
    if len(text) > MAX_QUERY_CHARS:
        raise BadQuery(f"search text is limited to {MAX_QUERY_CHARS} characters")
    query = fts_query(text, prefix=prefix)
    if query is None:
        return []
    words = _folded_words(" ".join(_words(text)))
    # Whole words first: FTS5 streams a term's matches, but expands a prefix without a prefix
    # index (5+ letters) into a full doclist merge; a completed common word ("love") would
    # cost tens of ms as a prefix. The prefix form runs when whole words find too few, as an
    # OR of the prefix's terms where the vocabulary knows them (catalog.terms).
    if prefix:
        query = _expanded_query(archive, text) or query
    found: dict[int, str | None] = {}
    for fts in dict.fromkeys([fts_query(text, prefix=False), query]):
        found = dict(_pool(archive, fts, pool, preserved_only))
        if len(found) >= pool:
            break
    typo = not found and _typo_query(words)
    if typo:
        found = dict(_pool(archive, typo, pool, preserved_only))
    titles = {key: _folded_words(name or "") for key, name in found.items()}
    missing = [key & MASK for key, title in titles.items()
               if typo or not all(w in title for w in words)]
    others = _other_fields(archive, missing)
    ranked = []
    for key, title in titles.items():
        rowid = key & MASK
        popularity = 100 - (key >> SEARCH_KEY_BITS)
        fields = (title, *others.get(rowid, ((), ())))
        value = (_typo_score(words, fields, popularity) if typo
                 else ranking.score(words, prefix, fields, popularity))
        if value is not None:
            ranked.append((ranking.rank_key(value), key, rowid))
    ranked.sort()
    return ranked


def summaries(archive: Archive, rowids: list[int]) -> list[dict[str, Any]]:
    """Track summaries (title, artists, album, year, ids) in the order of `rowids`."""
    if not rowids:
        return []
    found = {r["rowid"]: r for r in _rows(archive.conn.execute(
        f"{TRACK_SUMMARY_SQL} WHERE t.rowid IN ({','.join('?' * len(rowids))})", rowids))}
    return [found[r] for r in rowids if r in found]


def search(
    archive: Archive, text: str, *, limit: int = 20, offset: int = 0, prefix: bool = True,
    preserved_only: bool = False,
) -> list[dict[str, Any]]:
    """Tracks matching all words of `text`, best first: how well they match (whole words,
    in the title, an exact title) and how popular they are, in one score (`ranking`).

    The index is keyed by popularity (see writer.SEARCH_KEY_SQL), so FTS5 streams matches
    most popular first and stops after a pool of SEARCH_POOL; the candidates are then
    scored. The cost is bounded however many tracks match. A query that matches
    nothing is retried with the words' beginnings and ranked by similarity, so one typo
    still finds the track. `preserved_only` keeps tracks that have an ok file in the ledger
    (filtered inside the FTS scan, so no match is missed).
    """
    if not 0 <= offset <= MAX_OFFSET:
        raise BadQuery(f"offset must be between 0 and {MAX_OFFSET}")
    need = offset + _limit(limit)
    ranked = _ranked(archive, text, max(SEARCH_POOL, 2 * need), prefix=prefix,
                     preserved_only=preserved_only)
    return summaries(archive, [r for _, _, r in ranked[offset:need]])


def search_page(archive: Archive, text: str, *, limit: int = 20, after: str | None = None,
                preserved_only: bool = False) -> tuple[list[dict[str, Any]], str | None]:
    """A page of `search` and the cursor of the next one (keyset paging over the best
    SEARCH_POOL matches: a cursor names the last row seen, so pages never skip or repeat
    rows when the catalog changes between requests)."""
    _limit(limit)
    mark = None
    if after:
        rank_text, _, key_text = after.partition(".")
        if not (after.isascii() and rank_text.isdigit() and key_text.isdigit()) \
                or len(after) > 40:
            raise BadQuery("not a search cursor")
        mark = (int(rank_text), int(key_text))
    ranked = _ranked(archive, text, SEARCH_POOL, preserved_only=preserved_only)
    if mark:
        ranked = [r for r in ranked if (r[0], r[1]) > mark]  # rank order: (rank, key) ascending
    page = ranked[:limit]
    more = len(ranked) > limit
    cursor = f"{page[-1][0]}.{page[-1][1]}" if page and more else None
    return summaries(archive, [r for _, _, r in page]), cursor


def candidates(archive: Archive, title: str, artists: str = "", *, limit: int = 400
               ) -> list[dict[str, Any]]:
    """Tracks whose title holds every title word and, when given, whose artists hold every
    artist word (column-filtered FTS, most popular first): candidates for tag matching."""
    title_q = fts_query(title, prefix=False)
    if title_q is None:
        return []
    queries = []
    artists_q = fts_query(artists, prefix=False)
    if artists_q:
        queries.append(f"name : ({title_q}) AND artists : ({artists_q})")
    queries.append(f"name : ({title_q})")
    mask = (1 << SEARCH_KEY_BITS) - 1
    for query in queries:
        rowids = [k & mask for (k,) in archive.conn.execute(
            "SELECT rowid FROM track_fts WHERE track_fts MATCH ? ORDER BY rowid LIMIT ?",
            (query, _limit(limit)))]
        if rowids:
            return _rows(archive.conn.execute(
                f"{TRACK_SUMMARY_SQL} WHERE t.rowid IN ({','.join('?' * len(rowids))})",
                rowids))
    return []


def identifier_kind(ident: str) -> str:
    """Classify an identifier: isrc, upc, mbid or (anything else) a source id."""
    if ISRC_RE.match(ident.upper()) and not ident.isdigit():
        return "isrc"
    if BARCODE_RE.match(ident):
        return "upc"
    if MBID_RE.match(ident.lower()):
        return "mbid"
    return "id"


def lookup(archive: Archive, identifiers: list[str]) -> dict[str, dict[str, list[dict]]]:
    """Batch lookup of up to 1,000 ISRCs, UPCs, MBIDs or source ids in one call.

    Returns, per identifier, the tracks, albums and artists it names (empty lists if none).
    """
    if len(identifiers) > MAX_BATCH:
        raise BadQuery(f"at most {MAX_BATCH} identifiers per lookup")
    result: dict[str, dict[str, list[dict]]] = {
        i: {"tracks": [], "albums": [], "artists": []} for i in identifiers
    }
    groups: dict[str, list[str]] = {"isrc": [], "upc": [], "mbid": [], "id": []}
    for ident in identifiers:
        if not isinstance(ident, str) or not ident or len(ident) > 200 or "\x00" in ident:
            raise BadQuery(f"not an identifier: {ident!r}")
        utf8_text(ident, "identifier")
        kind = identifier_kind(ident)
        if kind != "id":
            groups[kind].append(ident)
        groups["id"].append(ident)  # any identifier may also be a source's own id
    plan = [
        ("isrc", "tracks", TRACK_SUMMARY_SQL, "t.isrc", str.upper),
        ("upc", "albums", ALBUM_SUMMARY_SQL, "al.upc", str),
        ("mbid", "tracks", TRACK_SUMMARY_SQL, "t.mbid", str.lower),
        ("mbid", "albums", ALBUM_SUMMARY_SQL, "al.mbid", str.lower),
        ("mbid", "artists", ARTIST_SUMMARY_SQL, "ar.mbid", str.lower),
        ("id", "tracks", TRACK_SUMMARY_SQL, "t.ext_id", str),
        ("id", "albums", ALBUM_SUMMARY_SQL, "al.ext_id", str),
        ("id", "artists", ARTIST_SUMMARY_SQL, "ar.ext_id", str),
    ]
    for kind, entity, base_sql, column, normalize in plan:
        keys: dict[str, list[str]] = {}
        for ident in groups[kind]:
            keys.setdefault(normalize(ident), []).append(ident)
        if not keys:
            continue
        marks = ",".join("?" * len(keys))
        sql = base_sql.replace("SELECT ", f"SELECT {column} AS _key, ", 1)
        cur = archive.conn.execute(f"{sql} WHERE {column} IN ({marks}) ORDER BY 2", list(keys))
        for row in _rows(cur):
            for original in keys[row.pop("_key")]:
                if row not in result[original][entity]:
                    result[original][entity].append(row)
    return result


def track(archive: Archive, rowid: int) -> dict[str, Any]:
    """Everything the catalog knows of one track: columns, album, artists, markets, extra."""
    conn = archive.conn
    rows = _rows(conn.execute(
        "SELECT t.*, s.name AS source, m.codes AS markets FROM tracks t "
        "JOIN sources s ON s.id = t.source_id LEFT JOIN markets m ON m.rowid = t.markets_rowid "
        "WHERE t.rowid = ?", (rowid,)))
    if not rows:
        raise NotInCatalog(f"no track with rowid {rowid}")
    info = rows[0]
    info.pop("diff", None)
    info["extra"] = json.loads(info["extra"]) if info["extra"] else None
    info["markets"] = json.loads(info["markets"]) if info["markets"] else None
    if info["explicit"] is not None:
        info["explicit"] = bool(info["explicit"])
    info["artists"] = _rows(conn.execute(
        "SELECT a.rowid, a.ext_id AS id, a.mbid, a.name, ta.join_phrase FROM track_artists ta "
        "JOIN artists a ON a.rowid = ta.artist_rowid WHERE ta.track_rowid = ? "
        "ORDER BY ta.position", (rowid,)))
    albums = _rows(conn.execute(f"{ALBUM_SUMMARY_SQL} WHERE al.rowid = ?", (info["album_rowid"],)))
    info["album"] = albums[0] if albums else None
    features = _rows(conn.execute(
        "SELECT * FROM audio_features WHERE track_rowid = ?", (rowid,)))
    info["audio_features"] = features[0] if features else None
    from musicark.analyse.record import track_loudness  # loudness and flags, when analysed

    info["loudness"] = track_loudness(conn, rowid)
    return info


def album(archive: Archive, rowid: int) -> dict[str, Any]:
    """An album with its tracks in disc/track order."""
    rows = _rows(archive.conn.execute(f"{ALBUM_SUMMARY_SQL} WHERE al.rowid = ?", (rowid,)))
    if not rows:
        raise NotInCatalog(f"no album with rowid {rowid}")
    info = rows[0]
    info["tracks"] = _rows(archive.conn.execute(
        f"{TRACK_SUMMARY_SQL} WHERE t.album_rowid = ? "
        "ORDER BY t.disc_number, t.track_number, t.rowid", (rowid,)))
    return info


def artist(archive: Archive, rowid: int, *, limit: int = 100) -> dict[str, Any]:
    """An artist with genres, albums and most popular tracks."""
    rows = _rows(archive.conn.execute(f"{ARTIST_SUMMARY_SQL} WHERE ar.rowid = ?", (rowid,)))
    if not rows:
        raise NotInCatalog(f"no artist with rowid {rowid}")
    info = rows[0]
    info["genres"] = [r[0] for r in archive.conn.execute(
        "SELECT genre FROM artist_genres WHERE artist_rowid = ? ORDER BY position", (rowid,))]
    info["albums"] = _rows(archive.conn.execute(
        f"{ALBUM_SUMMARY_SQL} JOIN album_artists x ON x.album_rowid = al.rowid "
        "WHERE x.artist_rowid = ? ORDER BY al.release_date LIMIT ?", (rowid, limit)))
    info["tracks"] = _rows(archive.conn.execute(
        f"{TRACK_SUMMARY_SQL} JOIN track_artists x ON x.track_rowid = t.rowid "
        "WHERE x.artist_rowid = ? ORDER BY t.popularity DESC LIMIT ?", (rowid, limit)))
    return info


def resolve(archive: Archive, ref: str) -> tuple[str, int]:
    """Turn `track:12`, `album:3`, `artist:7` or any identifier into (entity, rowid)."""
    entity, _, number = ref.partition(":")
    if entity in ("track", "album", "artist") and number.isascii() and number.isdigit():
        if len(number) > 18:  # past SQLite's 64-bit rowids: no such row
            raise NotInCatalog(f"no {entity} {ref} in the catalog")
        return entity, int(number)
    found = lookup(archive, [ref])[ref]
    for entity in ("tracks", "albums", "artists"):
        if found[entity]:
            return entity[:-1], found[entity][0]["rowid"]
    raise NotInCatalog(f"nothing in the catalog is identified by {ref!r}")


def show(archive: Archive, ref: str) -> dict[str, Any]:
    entity, rowid = resolve(archive, ref)
    detail = {"track": track, "album": album, "artist": artist}[entity](archive, rowid)
    return {"entity": entity, **detail}


def shuffle(archive: Archive, n: int = 10, *, seed: int | None = None) -> list[dict[str, Any]]:
    """`n` distinct tracks drawn uniformly at random from the whole catalog.

    Rejection sampling over the rowid range: every existing rowid is equally likely however
    many gaps deleted sources left, and each draw is one index probe (no OFFSET scans).
    """
    if not 1 <= n <= MAX_LIMIT:
        raise BadQuery(f"n must be between 1 and {MAX_LIMIT}")
    conn = archive.conn
    low, high, count = conn.execute(
        "SELECT min(rowid), max(rowid), count(*) FROM tracks").fetchone()
    if not count:
        return []
    rng = random.Random(seed) if seed is not None else random.SystemRandom()
    picked: list[int] = []
    seen: set[int] = set()
    wanted = min(n, count)
    while len(picked) < wanted:
        candidate = rng.randint(low, high)
        if candidate in seen:
            continue
        if conn.execute("SELECT 1 FROM tracks WHERE rowid = ?", (candidate,)).fetchone():
            seen.add(candidate)
            picked.append(candidate)
    marks = ",".join("?" * len(picked))
    rows = {r["rowid"]: r for r in _rows(conn.execute(
        f"{TRACK_SUMMARY_SQL} WHERE t.rowid IN ({marks})", picked))}
    return [rows[r] for r in picked]

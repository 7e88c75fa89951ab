"""What the web UI and API read beyond the catalog's own search and lookups: which files
hold a recording, which one a browser can play, cover art, releases, random preserved tracks.

Every file served is found here through the ledger, by SHA-256 or by a track id; nothing
ever builds a path from request text.
"""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path
from typing import Any

from musicark.archive import Archive
from musicark.derive.tagging import tags_of
from musicark.errors import DamagedFile, NotInCatalog
from musicark.ingest.store import Store
from musicark.trust import is_digest

# Chromium plays all of these; ALAC (in M4A) and anything unknown it does not.
PLAYABLE = {("ogg", "opus"): ("audio/ogg", 0), ("mp3", "mp3"): ("audio/mpeg", 1),
            ("mov,mp4,m4a,3gp,3g2,mj2", "aac"): ("audio/mp4", 2),
            ("ogg", "vorbis"): ("audio/ogg", 3), ("flac", "flac"): ("audio/flac", 4),
            ("wav", "pcm_s16le"): ("audio/wav", 5)}
RANDOM_LIST_LIMIT = 1_000_000  # below this many preserved tracks, draw from their list
LIST_TTL = 60.0

FILES_SQL = """
SELECT f.rowid, f.sha256, f.size, f.container, f.codec, f.bitrate, f.sample_rate, f.channels,
       f.duration_ms, f.licence, f.provenance, f.status, f.reason, f.added_at,
       tf.method, tf.score, NULL AS derived_from, NULL AS kind, f.common
  FROM track_files tf JOIN files f ON f.rowid = tf.file_rowid
 WHERE tf.track_rowid = ?
UNION ALL
SELECT o.rowid, o.sha256, o.size, o.container, o.codec, o.bitrate, o.sample_rate, o.channels,
       o.duration_ms, o.licence, o.provenance, o.status, o.reason, o.added_at,
       tf.method, tf.score, i.sha256, d.kind, o.common
  FROM track_files tf JOIN derivations d ON d.input_file = tf.file_rowid
  JOIN files i ON i.rowid = d.input_file JOIN files o ON o.rowid = d.output_file
 WHERE tf.track_rowid = ? AND d.output_file != d.input_file
"""
FILE_KEYS = ("rowid", "sha256", "size", "container", "codec", "bitrate", "sample_rate",
             "channels", "duration_ms", "licence", "provenance", "status", "reason",
             "added_at", "match_method", "match_score", "derived_from", "derivation", "tags")


def media_type(container: str | None, codec: str | None) -> str | None:
    found = PLAYABLE.get((container, codec))
    return found[0] if found else None


def store_damage(store: Store, sha256: str, size: int | None) -> DamagedFile | None:
    """What is wrong with a store file whose ledger row says `size` bytes, or None. A size
    check (one stat) is the cheap part of fixity: a truncated, padded or vanished file
    cannot hold the bytes of its SHA-256; a full re-hash is the audit's job."""
    if not is_digest(sha256):  # a ledger row from a hostile release: it names no store file
        return DamagedFile(str(sha256)[:64], "", None, size)
    path = store.path_for(sha256)
    try:
        found: int | None = path.stat().st_size
    except OSError:  # gone, or unreadable: either way not there to serve
        found = None
    if found is None or (size is not None and found != size):
        return DamagedFile(sha256, str(path), found, size)
    return None


def track_files(archive: Archive, track_rowid: int) -> list[dict[str, Any]]:
    """Every file that holds the recording: matched files and what was made from them.
    Files of the ledger whose store copy is damaged say so and are not playable."""
    rows = archive.conn.execute(FILES_SQL, (track_rowid, track_rowid)).fetchall()
    store = Store(archive.store_path)
    files = []
    for row in rows:
        item = dict(zip(FILE_KEYS, row, strict=True))
        # What the file's own tags say (title, artists, album...): shown beside the catalog.
        item["tags"] = json.loads(item["tags"]) if item["tags"] else None
        if item["tags"] is None and item["derivation"] == "tagged" and item["status"] == "ok" \
                and is_digest(item["sha256"]):
            # Tagged copies made before `tag` recorded their tags: read them from the copy.
            found = tags_of(store.path_for(item["sha256"]))
            item["tags"] = found.common if found else None
        item["media_type"] = media_type(item["container"], item["codec"])
        damage = store_damage(store, item["sha256"], item["size"]) \
            if item["status"] == "ok" else None
        item["damaged"] = str(damage) if damage else None
        item["playable"] = item["status"] == "ok" and item["media_type"] is not None \
            and damage is None
        files.append(item)
    files.sort(key=lambda f: (f["derived_from"] is not None, f["rowid"]))
    return files


def best_playable(files: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The file a browser should get: small lossy formats first (Opus, MP3, AAC), then
    Vorbis, FLAC, WAV; tagged copies before untagged ones of the same format."""
    playable = [f for f in files if f["playable"]]
    if not playable:
        return None
    return min(playable, key=lambda f: (PLAYABLE[(f["container"], f["codec"])][1],
                                        f["derivation"] != "tagged", f["rowid"]))


def preservation(archive: Archive, track_rowids: list[int]) -> dict[int, dict[str, Any]]:
    """Per track: how many files hold it, in which formats, its tier in the latest plan, and
    the file to play."""
    if not track_rowids:
        return {}
    marks = ",".join("?" * len(track_rowids))
    out: dict[int, dict[str, Any]] = {
        r: {"files": 0, "codecs": [], "tier": None, "play": None} for r in track_rowids}
    # `+f.status`: files by rowid; through the status index SQLite scanned every ok file
    # (2.5 s per search page with a million files in the ledger).
    for track, files, codecs in archive.conn.execute(f"""
            SELECT tf.track_rowid, count(*), group_concat(DISTINCT f.codec)
              FROM track_files tf JOIN files f ON f.rowid = tf.file_rowid AND +f.status = 'ok'
             WHERE tf.track_rowid IN ({marks}) GROUP BY 1""", track_rowids):
        out[track]["files"] = files
        out[track]["codecs"] = sorted((codecs or "").split(","))
    plan = archive.conn.execute("SELECT max(id) FROM plans").fetchone()[0]
    if plan is not None:
        for track, tier in archive.conn.execute(
                f"SELECT track_rowid, tier FROM plan_items WHERE plan_id = ? "
                f"AND track_rowid IN ({marks})", [plan, *track_rowids]):
            out[track]["tier"] = tier
    for track, info in out.items():
        if info["files"]:
            best = best_playable(track_files(archive, track))
            info["play"] = best["sha256"] if best else None
    return out


def stored_file(archive: Archive, sha256: str) -> tuple[Path, dict[str, Any]]:
    """The store path and facts of a file the ledger holds as ok; NotInCatalog otherwise,
    DamagedFile when the store copy is missing or its size is not the ledger's."""
    row = archive.conn.execute(
        "SELECT sha256, size, container, codec, status FROM files WHERE sha256 = ?",
        (sha256,)).fetchone()
    if row is None or row[4] != "ok":
        raise NotInCatalog(f"no file {sha256} in the archive")
    store = Store(archive.store_path)
    damage = store_damage(store, row[0], row[1])
    if damage is not None:
        raise damage
    path = store.path_for(row[0])
    return path, {"sha256": row[0], "size": row[1], "container": row[2], "codec": row[3],
                  "media_type": media_type(row[2], row[3])}


class PreservedTracks:
    """Uniform draws over the tracks the archive holds a playable file for (true shuffle)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: list[int] | None = None
        self._at = 0.0

    def _list(self, archive: Archive) -> list[int] | None:
        with self._lock:
            if self._ids is None or time.monotonic() - self._at > LIST_TTL:
                count = archive.conn.execute(
                    "SELECT count(DISTINCT track_rowid) FROM track_files").fetchone()[0]
                self._ids = None if count > RANDOM_LIST_LIMIT else [
                    r for (r,) in archive.conn.execute(
                        "SELECT DISTINCT tf.track_rowid FROM track_files tf JOIN files f "
                        "ON f.rowid = tf.file_rowid AND f.status = 'ok' ORDER BY 1")]
                self._at = time.monotonic()
            return self._ids

    def draw(self, archive: Archive, n: int, rng: random.Random) -> list[int]:
        ids = self._list(archive)
        if ids is not None:
            return rng.sample(ids, min(n, len(ids)))
        low, high = archive.conn.execute(
            "SELECT min(track_rowid), max(track_rowid) FROM track_files").fetchone()
        picked: list[int] = []
        for _ in range(n * 10_000):  # rejection sampling: uniform over the preserved set
            if len(picked) >= n:
                break
            candidate = rng.randint(low, high)
            if candidate not in picked and archive.conn.execute(
                    "SELECT 1 FROM track_files tf JOIN files f ON f.rowid = tf.file_rowid "
                    "WHERE tf.track_rowid = ? AND +f.status = 'ok' LIMIT 1",
                    (candidate,)).fetchone():
                picked.append(candidate)
        return picked


def releases(archive: Archive) -> list[dict[str, Any]]:
    from musicark.release.metainfo import magnet

    rows = archive.conn.execute("""
        SELECT r.name, r.release_date, t.name, t.bucket, t.metadata, t.infohash_v1,
               t.infohash_v2, t.size, t.num_files, t.popularity_min, t.popularity_max,
               t.listens_covered
          FROM torrents t JOIN releases r ON r.id = t.release_id ORDER BY t.id""").fetchall()
    keys = ("release", "date", "name", "bucket", "metadata", "btih", "btmh", "data_size",
            "num_files", "popularity_min", "popularity_max", "listens_covered")
    out = []
    for row in rows:
        item = dict(zip(keys, row, strict=True))
        item["metadata"] = bool(item["metadata"])
        item["magnet"] = magnet(item["btih"], item["btmh"])
        item["torrent_url"] = f"/releases/{item['release']}/{item['name']}.torrent"
        out.append(item)
    return out


def torrent_file(archive: Archive, release: str, name: str) -> Path:
    """The .torrent of a recorded release, located from the catalog's own record."""
    row = archive.conn.execute(
        "SELECT r.name, t.path FROM torrents t JOIN releases r ON r.id = t.release_id "
        "WHERE r.name = ? AND t.name = ?", (release, name)).fetchone()
    if row is None:
        raise NotInCatalog(f"no torrent {name!r} in release {release!r}")
    root = (archive.path / "releases").resolve()
    path = (root / row[0] / row[1]).resolve()
    if root not in path.parents or not path.is_file():
        raise NotInCatalog(f"torrent {name!r} is recorded but its file is missing")
    return path


def matching_entities(archive: Archive, tracks: list[dict[str, Any]], text: str
                      ) -> dict[str, list[dict[str, Any]]]:
    """Artists and albums of these tracks whose own names hold the searched words, so a
    search for an artist or an album offers its page, not only its tracks."""
    from musicark.catalog.search import _folded_words, _words, tier_function

    words = _folded_words(" ".join(_words(text)))
    tier = tier_function(words, True)
    ids = [t["rowid"] for t in tracks]
    if not words or not ids:
        return {"artists": [], "albums": []}
    marks = ",".join("?" * len(ids))
    artists = archive.conn.execute(
        f"SELECT DISTINCT a.rowid, a.name FROM track_artists ta JOIN artists a "
        f"ON a.rowid = ta.artist_rowid WHERE ta.track_rowid IN ({marks})", ids).fetchall()
    found = {"artists": [{"rowid": r, "name": n} for r, n in artists
                         if tier(n) < 2][:8]}
    seen: dict[int, dict[str, Any]] = {}
    for rowid, name, year in exact_albums(archive, text, words):
        seen[rowid] = {"rowid": rowid, "name": name, "year": year, "exact": True}
    for t in tracks:
        if t.get("album_rowid") and tier(t.get("album")) < 2:
            seen.setdefault(t["album_rowid"], {"rowid": t["album_rowid"], "name": t["album"],
                                               "year": t.get("year"), "exact": False})
    found["albums"] = list(seen.values())[:8]
    return found


def exact_albums(archive: Archive, text: str, words: tuple[str, ...], limit: int = 3
                 ) -> list[tuple[int, str, str | None]]:
    """Albums whose whole name is the searched words (case and accents aside), found through
    the tracks' full-text index (album names have no index of their own), most popular
    first."""
    from musicark.catalog.search import SEARCH_KEY_BITS, _folded_words, fts_query

    query = fts_query(text, prefix=False)
    if query is None:
        return []
    mask = (1 << SEARCH_KEY_BITS) - 1
    found: dict[int, tuple[int, str, str | None]] = {}
    for album, name, year in archive.conn.execute(
            f"SELECT al.rowid, al.name, substr(al.release_date, 1, 4) FROM track_fts f "
            f"JOIN tracks t ON t.rowid = (f.rowid & {mask}) JOIN albums al "
            f"ON al.rowid = t.album_rowid WHERE track_fts MATCH ? ORDER BY f.rowid LIMIT 50",
            (f"album : ^ {query}",)):
        if album not in found and _folded_words(name or "") == words:
            found[album] = (album, name, year)
            if len(found) >= limit:
                break
    return list(found.values())

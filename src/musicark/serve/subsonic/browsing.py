"""Browsing methods: folders, indexes, directories, artists, albums, songs, album lists,
random songs, genres; the per-user lists musicark does not keep (starred, playlists) answer
empty and well-formed."""

from __future__ import annotations

import json
import random
import unicodedata
from bisect import bisect_left, bisect_right
from datetime import datetime
from typing import TYPE_CHECKING, Any

from musicark.serve.subsonic import entries
from musicark.serve.subsonic.entries import parse_id
from musicark.serve.subsonic.responses import GENERIC, NOT_FOUND, SubsonicError

if TYPE_CHECKING:
    from musicark.serve.subsonic.call import Call

IGNORED_ARTICLES = "The El La Los Las Le Les"
MAX_LIST = 500
FOLDER_ID = 1


def ping(call: Call) -> dict[str, Any]:
    return {}


def get_license(call: Call) -> dict[str, Any]:
    return {"license": {"valid": True}}


def get_extensions(call: Call) -> dict[str, Any]:
    return {"openSubsonicExtensions": [{"name": "apiKeyAuthentication", "versions": [1]},
                                       {"name": "formPost", "versions": [1]}]}


def get_music_folders(call: Call) -> dict[str, Any]:
    return {"musicFolders": {"musicFolder": [
        {"id": FOLDER_ID, "name": call.request.app.state.archive_name}]}}


def get_user(call: Call) -> dict[str, Any]:
    name = call.get("username") or call.user
    if name != call.user:
        raise SubsonicError(50, "a user may only read their own account")
    return {"user": {"username": name, "scrobblingEnabled": True, "adminRole": False,
                     "settingsRole": False, "downloadRole": True, "uploadRole": False,
                     "playlistRole": False, "coverArtRole": False, "commentRole": False,
                     "podcastRole": False, "streamRole": True, "jukeboxRole": False,
                     "shareRole": False, "videoConversionRole": False,
                     "folder": [FOLDER_ID]}}


def get_scan_status(call: Call) -> dict[str, Any]:
    return {"scanStatus": {"scanning": False, "count": len(call.snap.songs)}}


def _index_letter(sort_name: str) -> str:
    for article in IGNORED_ARTICLES.split():
        if sort_name.lower().startswith(article.lower() + " "):
            sort_name = sort_name[len(article) + 1:]
            break
    letter = unicodedata.normalize("NFKD", sort_name.strip()[:1]).upper()[:1]
    return letter if letter.isalpha() else "#"


def _indexed(call: Call, shape) -> list[dict[str, Any]]:
    snap = call.snap
    groups: dict[str, list[tuple[str, int]]] = {}
    for rowid, (name, sort) in snap.artists.items():
        if snap.artist_albums.get(rowid):
            groups.setdefault(_index_letter(sort or name), []).append((sort.casefold(), rowid))
    return [{"name": letter, "artist": [shape(snap, r) for _, r in sorted(groups[letter])]}
            for letter in sorted(groups, key=lambda g: (g == "#", g))]


def _millis(stamp: str) -> int:
    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return 0


def get_indexes(call: Call) -> dict[str, Any]:
    def shape(snap, rowid):
        return {"id": f"ar-{rowid}", "name": snap.artists[rowid][0]}
    return {"indexes": {"lastModified": _millis(call.snap.newest),
                        "ignoredArticles": IGNORED_ARTICLES, "index": _indexed(call, shape)}}


def get_artists(call: Call) -> dict[str, Any]:
    return {"artists": {"ignoredArticles": IGNORED_ARTICLES,
                        "index": _indexed(call, entries.artist)}}


def _artist_albums(call: Call, rowid: int) -> list[int]:
    """Albums the artist is the album artist of, and albums holding one of their songs."""
    snap = call.snap
    found = dict.fromkeys(snap.artist_albums.get(rowid, []))
    for (album,) in call.archive.conn.execute(
            "SELECT DISTINCT t.album_rowid FROM track_artists ta JOIN tracks t "
            "ON t.rowid = ta.track_rowid WHERE ta.artist_rowid = ? LIMIT 5000", (rowid,)):
        if album in snap.albums:
            found.setdefault(album)
    return sorted(found, key=lambda a: (snap.albums[a].year or 0, snap.albums[a].name))


def _artist_or_404(call: Call, value: str) -> int:
    rowid = parse_id(value, "ar")
    if rowid not in call.snap.artists and not call.archive.conn.execute(
            "SELECT 1 FROM artists WHERE rowid = ?", (rowid,)).fetchone():
        raise SubsonicError(NOT_FOUND, f"no such artist: {value[:80]!r}")
    return rowid


def get_artist(call: Call) -> dict[str, Any]:
    rowid = _artist_or_404(call, call.require("id"))
    albums = _artist_albums(call, rowid)
    if not albums:
        raise SubsonicError(NOT_FOUND, "no songs by this artist in the archive")
    name = call.snap.artists.get(rowid, (None,))[0] or call.archive.conn.execute(
        "SELECT name FROM artists WHERE rowid = ?", (rowid,)).fetchone()[0]
    return {"artist": {**entries.artist(call.snap, rowid), "name": name,
                       "albumCount": len(albums), "album": entries.albums(call.snap, albums)}}


def _album_songs(call: Call, rowid: int) -> list[dict[str, Any]]:
    ids = [r for (r,) in call.archive.conn.execute(
        "SELECT rowid FROM tracks WHERE album_rowid = ? "
        "ORDER BY disc_number, track_number, rowid", (rowid,))]
    return entries.songs(call.archive, ids)


def _album_or_404(call: Call, value: str):
    rowid = parse_id(value, "al")
    item = call.snap.albums.get(rowid)
    if item is None:
        raise SubsonicError(NOT_FOUND, f"no such album: {value[:80]!r}")
    return item


def get_album(call: Call) -> dict[str, Any]:
    item = _album_or_404(call, call.require("id"))
    return {"album": {**entries.album(call.snap, item), "song": _album_songs(call, item.rowid)}}


def get_song(call: Call) -> dict[str, Any]:
    found = entries.songs(call.archive, [parse_id(call.require("id"), "tr")])
    if not found:
        raise SubsonicError(NOT_FOUND, "no such song")
    return {"song": found[0]}


def get_music_directory(call: Call) -> dict[str, Any]:
    value = call.require("id")
    if value.startswith("ar-"):
        rowid = _artist_or_404(call, value)
        name = call.archive.conn.execute(
            "SELECT name FROM artists WHERE rowid = ?", (rowid,)).fetchone()[0]
        children = entries.albums(call.snap, _artist_albums(call, rowid))
        return {"directory": {"id": value, "name": name or "", "parent": str(FOLDER_ID),
                              "child": children}}
    item = _album_or_404(call, value)
    parent = f"ar-{item.artist}" if item.artist else str(FOLDER_ID)
    return {"directory": {"id": value, "name": item.name, "parent": parent,
                          "child": _album_songs(call, item.rowid)}}


def _recent_albums(call: Call) -> list[int]:
    """Albums in the order they were last played, from the plays log (newest first)."""
    log = call.state.plays_log
    if log is None or not log.exists():
        return []
    seen: dict[int, None] = {}
    with open(log, "rb") as fh:
        fh.seek(0, 2)
        fh.seek(max(0, fh.tell() - (1 << 20)))
        lines = fh.read().splitlines()
    for line in reversed(lines):
        try:
            album = json.loads(line).get("album_rowid")
        except ValueError:
            continue
        if isinstance(album, int) and album in call.snap.albums:
            seen.setdefault(album)
    return list(seen)


def _album_ids(call: Call, kind: str, size: int, offset: int) -> list[int]:
    snap = call.snap
    if kind == "random":  # from the sorted list as it is: copying 218 k ids cost ~2 ms
        ids = snap.album_ids
        return random.SystemRandom().sample(ids, min(size, len(ids)))
    if kind in ("starred",):
        return []
    if kind == "recent":
        return _recent_albums(call)[offset:offset + size]
    if kind == "byGenre":
        genre = call.require("genre")
        return snap.genre_albums.get(genre, [])[offset:offset + size]
    if kind == "byYear":
        low = call.int("fromYear", None, -9999, 9999)
        high = call.int("toYear", None, -9999, 9999)
        if low is None or high is None:
            raise SubsonicError(10, "required parameter is missing: fromYear and toYear")
        first = bisect_left(snap.years, min(low, high))
        ids = snap.orders["byYear"][first:bisect_right(snap.years, max(low, high))]
        if low > high:
            ids.reverse()
        return ids[offset:offset + size]
    if kind not in snap.orders:
        raise SubsonicError(GENERIC, f"unknown album list type: {kind[:40]!r}")
    return snap.orders[kind][offset:offset + size]


def _album_list(call: Call) -> list[dict[str, Any]]:
    kind = call.require("type")
    size = call.int("size", 10, 0, MAX_LIST) or 0
    offset = call.int("offset", 0, 0, 2**31) or 0
    return entries.albums(call.snap, _album_ids(call, kind, size, offset))


def get_album_list2(call: Call) -> dict[str, Any]:
    return {"albumList2": {"album": _album_list(call)}}


def get_album_list(call: Call) -> dict[str, Any]:
    return {"albumList": {"album": _album_list(call)}}


def get_random_songs(call: Call) -> dict[str, Any]:
    size = call.int("size", 10, 0, MAX_LIST) or 0
    genre = call.get("genre")
    low, high = call.int("fromYear", None, -9999, 9999), call.int("toYear", None, -9999, 9999)
    pool = call.snap.genres.get(genre, []) if genre else call.snap.songs
    rng = random.SystemRandom()
    picked: list[dict[str, Any]] = []
    seen: set[int] = set()
    for _ in range(20):  # a year filter rejects some draws: draw again, a bounded number
        if len(picked) >= size or len(seen) >= len(pool):
            break
        fresh = [r for r in rng.sample(pool, min(len(pool), 2 * size)) if r not in seen]
        seen.update(fresh)
        for song in entries.songs(call.archive, fresh):
            year = song.get("year")
            if (low is not None and (year is None or year < low)) or (
                    high is not None and (year is None or year > high)):
                continue
            picked.append(song)
            if len(picked) >= size:
                break
    return {"randomSongs": {"song": picked}}


def get_genres(call: Call) -> dict[str, Any]:
    snap = call.snap
    albums: dict[str, int] = {}
    for item in snap.albums.values():
        if item.genre:
            albums[item.genre] = albums.get(item.genre, 0) + 1
    return {"genres": {"genre": [
        {"value": name, "songCount": len(songs), "albumCount": albums.get(name, 0)}
        for name, songs in sorted(snap.genres.items(), key=lambda g: g[0].casefold())]}}


def get_songs_by_genre(call: Call) -> dict[str, Any]:
    genre = call.require("genre")
    count = call.int("count", 10, 0, MAX_LIST) or 0
    offset = call.int("offset", 0, 0, 2**31) or 0
    ids = call.snap.genres.get(genre, [])[offset:offset + count]
    return {"songsByGenre": {"song": entries.songs(call.archive, ids)}}


def get_starred2(call: Call) -> dict[str, Any]:
    return {"starred2": {}}


def get_starred(call: Call) -> dict[str, Any]:
    return {"starred": {}}


def get_playlists(call: Call) -> dict[str, Any]:
    return {"playlists": {}}


def get_playlist(call: Call) -> dict[str, Any]:
    raise SubsonicError(NOT_FOUND, "no such playlist (musicark keeps none)")


def get_now_playing(call: Call) -> dict[str, Any]:
    return {"nowPlaying": {}}


METHODS = {
    "ping": ping, "getLicense": get_license, "getOpenSubsonicExtensions": get_extensions,
    "getMusicFolders": get_music_folders, "getUser": get_user,
    "getScanStatus": get_scan_status, "getIndexes": get_indexes, "getArtists": get_artists,
    "getArtist": get_artist, "getAlbum": get_album, "getSong": get_song,
    "getMusicDirectory": get_music_directory, "getAlbumList2": get_album_list2,
    "getAlbumList": get_album_list, "getRandomSongs": get_random_songs,
    "getGenres": get_genres, "getSongsByGenre": get_songs_by_genre,
    "getStarred2": get_starred2, "getStarred": get_starred, "getPlaylists": get_playlists,
    "getPlaylist": get_playlist, "getNowPlaying": get_now_playing,
}

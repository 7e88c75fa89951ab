"""Songs, albums and artists as Subsonic entries (the `Child`, `AlbumID3`, `ArtistID3`
shapes), built in one query per page of rows.

IDs are the catalog's row ids with a type prefix (`tr-`, `al-`, `ar-`): stable across
restarts for as long as the catalog keeps its rows.
"""

from __future__ import annotations

from typing import Any

from musicark.archive import Archive
from musicark.serve.subsonic.library import Album, Snapshot
from musicark.serve.subsonic.responses import NOT_FOUND, SubsonicError

LOSSLESS = {"flac", "alac", "pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_s16be", "wavpack"}
# codec: (suffix, content type)
FORMATS = {"mp3": ("mp3", "audio/mpeg"), "opus": ("opus", "audio/ogg"),
           "vorbis": ("ogg", "audio/ogg"), "flac": ("flac", "audio/flac"),
           "aac": ("m4a", "audio/mp4"), "alac": ("m4a", "audio/mp4"),
           "pcm_s16le": ("wav", "audio/wav"), "pcm_s24le": ("wav", "audio/wav"),
           "pcm_s16be": ("aiff", "audio/aiff"), "wavpack": ("wv", "audio/x-wavpack")}
PREFIXES = ("tr", "al", "ar")

SONG_SQL = """
SELECT t.rowid, t.name, t.album_rowid, al.name, t.disc_number, t.track_number,
       al.release_date, t.duration_ms, t.isrc, t.mbid, t.popularity,
       (SELECT ta.artist_rowid FROM track_artists ta WHERE ta.track_rowid = t.rowid
         ORDER BY ta.position LIMIT 1),
       (SELECT group_concat(name, ', ') FROM (SELECT a.name FROM track_artists ta
          JOIN artists a ON a.rowid = ta.artist_rowid
         WHERE ta.track_rowid = t.rowid ORDER BY ta.position)),
       (SELECT g.genre FROM track_artists ta JOIN artist_genres g
           ON g.artist_rowid = ta.artist_rowid
         WHERE ta.track_rowid = t.rowid ORDER BY ta.position, g.position LIMIT 1)
  FROM tracks t LEFT JOIN albums al ON al.rowid = t.album_rowid
 WHERE t.rowid IN ({marks})
"""
FILE_SQL = """
SELECT tf.track_rowid, f.sha256, f.size, f.container, f.codec, f.bitrate, f.duration_ms,
       f.added_at, f.rowid, f.sample_rate, f.channels
  FROM track_files tf JOIN files f ON f.rowid = tf.file_rowid AND +f.status = 'ok'
 WHERE tf.track_rowid IN ({marks})
"""
FILE_KEYS = ("track", "sha256", "size", "container", "codec", "bitrate", "duration_ms",
             "added_at", "rowid", "sample_rate", "channels")


def parse_id(value: str, prefix: str) -> int:
    """The row id in `tr-12` (for prefix `tr`); not found (70) for anything else."""
    head, _, number = value.partition("-")
    if head != prefix or not number.isdigit() or len(number) > 18:
        raise SubsonicError(NOT_FOUND, f"no such {_KIND[prefix]}: {value[:80]!r}")
    return int(number)


_KIND = {"tr": "song", "al": "album", "ar": "artist"}


def _better(file: dict[str, Any]) -> tuple:
    """The original a client gets: lossless first, then the highest bit rate."""
    return (file["codec"] in LOSSLESS, file["bitrate"] or 0, -file["rowid"])


def song_files(archive: Archive, rowids: list[int]) -> dict[int, dict[str, Any]]:
    """Per track, the ok file it is played from."""
    best: dict[int, dict[str, Any]] = {}
    for start in range(0, len(rowids), 900):
        chunk = rowids[start:start + 900]
        for row in archive.conn.execute(FILE_SQL.format(marks=",".join("?" * len(chunk))),
                                        chunk):
            item = dict(zip(FILE_KEYS, row, strict=True))
            have = best.get(item["track"])
            if have is None or _better(item) > _better(have):
                best[item["track"]] = item
    return best


def _clean(text: str | None) -> str:
    return (text or "").replace("/", "-").strip() or "unknown"


def songs(archive: Archive, rowids: list[int]) -> list[dict[str, Any]]:
    """Song entries for these track rowids, in their order; rows with no playable file are
    left out."""
    if not rowids:
        return []
    files = song_files(archive, rowids)
    gains = _gains(archive, files)
    rows: dict[int, dict[str, Any]] = {}
    for start in range(0, len(rowids), 900):
        chunk = rowids[start:start + 900]
        for (rowid, name, album_rowid, album, disc, number, date, duration, isrc, mbid,
             _popularity, artist_rowid, artists, genre) in archive.conn.execute(
                SONG_SQL.format(marks=",".join("?" * len(chunk))), chunk):
            file = files.get(rowid)
            if file is None:
                continue
            suffix, content_type = FORMATS.get(file["codec"], ("bin",
                                                               "application/octet-stream"))
            seconds = round((duration or file["duration_ms"] or 0) / 1000)
            year = int(date[:4]) if date and date[:4].isdigit() else None
            title = name or ""
            rows[rowid] = {
                "id": f"tr-{rowid}", "parent": f"al-{album_rowid}" if album_rowid else None,
                "isDir": False, "title": title, "album": album, "artist": artists,
                "track": number, "discNumber": disc, "year": year, "genre": genre,
                "coverArt": f"tr-{rowid}", "size": file["size"], "contentType": content_type,
                "suffix": suffix, "duration": seconds,
                "bitRate": round((file["bitrate"] or 0) / 1000),
                "samplingRate": file["sample_rate"], "channelCount": file["channels"],
                "path": f"{_clean(artists)}/{_clean(album)}/"
                        f"{(number or 0):02d} {_clean(title)}.{suffix}",
                "isVideo": False, "created": _iso(file["added_at"]),
                "albumId": f"al-{album_rowid}" if album_rowid else None,
                "artistId": f"ar-{artist_rowid}" if artist_rowid else None,
                "type": "music", "mediaType": "song", "musicBrainzId": mbid,
                "isrc": [isrc] if isrc else [],
                "genres": [{"name": genre}] if genre else [],
                "userRating": None, "averageRating": None,
                "playCount": None, "bpm": None, "comment": None,
                "sortName": None, "displayArtist": artists,
                "replayGain": _replay_gain(gains, file["rowid"], album_rowid),
            }
    return [rows[r] for r in rowids if r in rows]


def _gains(archive: Archive, files: dict[int, dict[str, Any]]) -> tuple[dict, dict]:
    from musicark.analyse.record import replay_gains

    albums = [r[0] for r in archive.conn.execute(
        f"SELECT DISTINCT album_rowid FROM tracks WHERE album_rowid IS NOT NULL AND rowid IN "
        f"({','.join(str(int(t)) for t in files) or 'NULL'})")]
    return replay_gains(archive.conn, [f["rowid"] for f in files.values()], albums)


def _replay_gain(gains: tuple[dict, dict], file_id: int, album: int | None
                 ) -> dict[str, float] | None:
    """OpenSubsonic's `replayGain` (ReplayGain 2.0, to -18 LUFS) when the file is analysed
    (`musicark analyse`): clients such as Symfonium and Feishin normalise with it."""
    track = gains[0].get(file_id)
    if track is None:
        return None
    album_gain = gains[1].get(album) if album else None
    return {"trackGain": track[0], "trackPeak": track[1],
            "albumGain": album_gain[0] if album_gain else None,
            "albumPeak": album_gain[1] if album_gain else None, "baseGain": 0.0}


def _iso(stamp: str | None) -> str | None:
    if not stamp:
        return None
    return stamp if stamp.endswith("Z") or "+" in stamp[10:] else stamp + "Z"


def album(snap: Snapshot, item: Album) -> dict[str, Any]:
    """An AlbumID3 entry (also usable as a directory child with isDir)."""
    artist = snap.artists.get(item.artist) if item.artist else None
    return {"id": f"al-{item.rowid}", "name": item.name, "title": item.name,
            "album": item.name, "isDir": True,
            "artist": artist[0] if artist else None,
            "artistId": f"ar-{item.artist}" if item.artist else None,
            "parent": f"ar-{item.artist}" if item.artist else None,
            "coverArt": f"al-{item.rowid}", "songCount": item.songs,
            "duration": round(item.duration_ms / 1000), "created": _iso(item.added),
            "year": item.year, "genre": item.genre,
            "genres": [{"name": item.genre}] if item.genre else []}


def artist(snap: Snapshot, rowid: int) -> dict[str, Any]:
    name = snap.artists.get(rowid, ("", ""))[0]
    return {"id": f"ar-{rowid}", "name": name, "coverArt": f"ar-{rowid}",
            "albumCount": len(snap.artist_albums.get(rowid, []))}


def albums(snap: Snapshot, rowids: list[int]) -> list[dict[str, Any]]:
    return [album(snap, snap.albums[r]) for r in rowids if r in snap.albums]

"""Spotify: the JSON files of a personal data export. The extended streaming history
(`Streaming_History_Audio_*.json`, formerly `endsong_N.json`: `ts`, `ms_played`,
`master_metadata_*`, `spotify_track_uri`, ...) and the account data's
`StreamingHistory*.json` (`endTime` "YYYY-MM-DD HH:MM" UTC, `artistName`, `trackName`,
`msPlayed`).

Both give the time playback *ended*; a listen is dated when it started (end − played).
As Last.fm and ListenBrainz do, a play under 30 seconds (or of no stated length) is no
listen; podcast episodes and
audiobooks are not music. Each is reported with its reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from musicark.errors import BadSource
from musicark.listens.formats.common import batches, load_json, spotify_track_id
from musicark.listens.records import Batch, RowBuilder, parse_ts

MIN_PLAYED_MS = 30_000


def read(path: Path, *, user: str = "") -> Iterator[Batch]:
    data = load_json(path)
    if not isinstance(data, list):
        raise BadSource(f"{path}: not a Spotify streaming history (a JSON list)")
    rows = RowBuilder()

    def each() -> Iterator[None]:
        for number, rec in enumerate(data, start=1):
            if not isinstance(rec, dict):
                rows.reject(number, "not an object")
            elif "ts" in rec:
                _extended(rows, number, rec, user)
            elif "endTime" in rec:
                _account(rows, number, rec, user)
            else:
                rows.reject(number, "neither ts nor endTime: not a streaming history record")
            yield None

    yield from batches(rows, each())


def _started(end: object, played: object) -> object:
    seconds, reason = parse_ts(end)
    if reason or not isinstance(played, int | float):
        return end
    return seconds - played / 1000


def _extended(rows: RowBuilder, number: int, rec: dict, user: str) -> None:
    title = rec.get("master_metadata_track_name")
    if title is None and (rec.get("episode_name") or rec.get("audiobook_title")):
        rows.reject(number, "a podcast episode or audiobook, not a track")
        return
    played = rec.get("ms_played")
    if not isinstance(played, int | float):
        rows.reject(number, "no ms_played: a listen cannot be told from a skip")
        return
    if played < MIN_PLAYED_MS:
        rows.reject(number, "played under 30 s")
        return
    rows.add(number, ts=_started(rec.get("ts"), played), title=title,
             artist=rec.get("master_metadata_album_artist_name"),
             album=rec.get("master_metadata_album_album_name"),
             ext_id=spotify_track_id(rec.get("spotify_track_uri")),
             user=rec.get("username") or user)


def _account(rows: RowBuilder, number: int, rec: dict, user: str) -> None:
    played = rec.get("msPlayed")
    if isinstance(played, int | float) and played < MIN_PLAYED_MS:
        rows.reject(number, "played under 30 s")
        return
    end = rec.get("endTime")
    if isinstance(end, str) and len(end.strip()) == 16:  # "2023-01-01 12:34", UTC
        end = end.strip().replace(" ", "T") + ":00Z"
    rows.add(number, ts=_started(end, played), artist=rec.get("artistName"),
             title=rec.get("trackName"), user=user)

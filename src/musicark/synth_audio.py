"""Synthetic music for the demo and tests: short real recordings of synthetic catalog tracks.

`write_audio` picks tracks of the synthetic catalog (same seed, same catalog size as
`musicark synth catalog`) that last about a minute, renders each as a distinct little piece
(a pentatonic melody with harmonics and a bass line) of exactly the catalog's duration,
encodes it with PyAV in turn as FLAC, MP3, Opus and AAC (M4A), and tags it with mutagen:
title, artists, album, track number, date, and for three files in four the ISRC, so that
ingest can match by identifier and, for the rest, by fuzzy tags and length.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from mutagen.flac import FLAC
from mutagen.id3 import ID3, TALB, TDRC, TIT2, TPE1, TRCK, TSRC
from mutagen.mp4 import MP4, MP4FreeForm
from mutagen.oggopus import OggOpus

from musicark.archive import Archive
from musicark.errors import BadQuery
from musicark.synth import CatalogSynth

RATE = 22_050
MAX_SECONDS = 65
FORMATS = [  # (extension, container, codec, sample format, bit rate)
    ("flac", "flac", "flac", "s16", None),
    ("mp3", "mp3", "libmp3lame", "s16p", 96_000),
    ("opus", "ogg", "libopus", "s16", 48_000),
    ("m4a", "mp4", "aac", "fltp", 64_000),
]
PENTATONIC = [0, 2, 4, 7, 9]


def render(seconds: float, seed: int) -> np.ndarray:
    """A mono float32 piece, different for every seed."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    out = np.zeros(n, np.float32)
    tempo = rng.uniform(90, 150)
    beat = int(RATE * 60 / tempo / 2)
    root = 48 + int(rng.integers(0, 12))
    t = np.arange(beat) / RATE
    envelope = np.exp(-3 * t / (beat / RATE)).astype(np.float32)
    for start in range(0, n, beat):
        note = root + 12 + PENTATONIC[int(rng.integers(0, 5))] + 12 * int(rng.integers(0, 2))
        freq = 440 * 2 ** ((note - 69) / 12)
        tone = sum(np.sin(2 * np.pi * freq * k * t) / k for k in (1, 2, 3))
        bass_freq = 440 * 2 ** ((root - 69 + PENTATONIC[(start // beat // 4) % 5]) / 12)
        tone = tone + 0.6 * np.sin(2 * np.pi * bass_freq * t)
        chunk = (tone * envelope * 0.2).astype(np.float32)
        end = min(n, start + beat)
        out[start:end] += chunk[: end - start]
    return out


def encode(samples: np.ndarray, path: Path, container: str, codec: str, fmt: str,
           bit_rate: int | None) -> None:
    rate = 48_000 if codec == "libopus" else RATE
    if rate != RATE:  # Opus only takes 48 kHz (and a few others); resample simply
        samples = np.interp(np.arange(int(len(samples) * rate / RATE)) * RATE / rate,
                            np.arange(len(samples)), samples).astype(np.float32)
    tmp = path.with_name(path.name + ".partial")
    with av.open(str(tmp), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        if bit_rate:
            stream.bit_rate = bit_rate
        frame_size = stream.codec_context.frame_size or 4096
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16) if fmt.startswith("s16") \
            else samples.astype(np.float32)
        pts = 0
        for i in range(0, len(pcm), frame_size):
            block = pcm[i:i + frame_size]
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format=fmt, layout="mono")
            frame.sample_rate = rate
            frame.pts = pts
            frame.time_base = Fraction(1, rate)
            pts += len(block)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    os.replace(tmp, path)


def tag(path: Path, track: dict, album: dict, with_isrc: bool) -> None:
    artists = list(track["artists"])
    text = {"title": track["name"], "album": album["name"],
            "tracknumber": str(track["track_number"]), "date": album["release_date"][:4]}
    with_isrc = with_isrc and bool(track.get("isrc"))
    if path.suffix == ".mp3":
        tags = ID3()
        tags.add(TIT2(encoding=3, text=text["title"]))
        tags.add(TPE1(encoding=3, text=artists))
        tags.add(TALB(encoding=3, text=text["album"]))
        tags.add(TRCK(encoding=3, text=text["tracknumber"]))
        tags.add(TDRC(encoding=3, text=text["date"]))
        if with_isrc:
            tags.add(TSRC(encoding=3, text=track["isrc"]))
        tags.save(path)
    elif path.suffix == ".m4a":
        mp4 = MP4(path)
        mp4["©nam"], mp4["©ART"], mp4["©alb"] = text["title"], artists, text["album"]
        mp4["©day"], mp4["trkn"] = text["date"], [(track["track_number"], 0)]
        if with_isrc:
            mp4["----:com.apple.iTunes:ISRC"] = [MP4FreeForm(track["isrc"].encode())]
        mp4.save()
    else:
        vorbis = FLAC(path) if path.suffix == ".flac" else OggOpus(path)
        vorbis.update(text)
        vorbis["artist"] = artists
        if with_isrc:
            vorbis["isrc"] = track["isrc"]
        vorbis.save()


def render_track(out: Path, index: int, track: dict, album: dict) -> Path:
    """Render, encode and tag one track as file number `index` (the format rotates)."""
    ext, container, codec, fmt, bit_rate = FORMATS[index % len(FORMATS)]
    safe = "".join(c if c.isalnum() else "_" for c in track["name"])[:40]
    path = out / f"{index:04d} {safe}.{ext}"
    if not path.exists():
        piece_seed = int(hashlib.sha256(track["id"].encode()).hexdigest()[:8], 16)
        encode(render(track["duration_ms"] / 1000, piece_seed),
               path, container, codec, fmt, bit_rate)
        tag(path, track, album, with_isrc=index % 4 != 3)
    return path


def _output_folder(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadQuery(f"{out}: cannot write audio files there ({exc.strerror or exc})"
                       ) from exc


def write_audio(out: Path, files: int, *, seed: int = 0, catalog_tracks: int = 100_000,
                progress: Callable[[int, int], None] = lambda done, total: None) -> list[Path]:
    """Render `files` tracks of the synthetic catalog (seed, catalog_tracks) into `out`."""
    _output_folder(out)
    written: list[Path] = []
    made = 0
    for album in CatalogSynth(seed).albums(catalog_tracks):
        made += len(album["tracks"])
        if made >= catalog_tracks or len(written) >= files:
            break  # the catalog's last album may be cut short: never pick from it
        for track in album["tracks"]:
            if len(written) >= files or track["duration_ms"] > MAX_SECONDS * 1000:
                continue
            track = {**track, "artists": [a.name for a in track["artists"]]}
            written.append(render_track(out, len(written), track, album))
            progress(len(written), files)
    return written


ARCHIVE_TRACKS_SQL = """
SELECT t.rowid, t.name, coalesce(t.track_number, 1), t.isrc, t.duration_ms,
       coalesce(al.name, ''), coalesce(al.release_date, ''),
       (SELECT json_group_array(name) FROM (SELECT a.name FROM track_artists ta
          JOIN artists a ON a.rowid = ta.artist_rowid WHERE ta.track_rowid = t.rowid
         ORDER BY ta.position))
  FROM tracks t LEFT JOIN albums al ON al.rowid = t.album_rowid
 WHERE t.duration_ms BETWEEN 1000 AND ? AND t.name <> ''
 ORDER BY t.popularity IS NULL, t.popularity DESC, t.rowid LIMIT ?
"""


def write_archive_audio(archive: Archive, out: Path, files: int, *,
                        max_seconds: int = MAX_SECONDS,
                        progress: Callable[[int, int], None] = lambda done, total: None
                        ) -> list[Path]:
    """Render audio for the most popular tracks of any archive's catalog that last at most
    `max_seconds` (so a real catalog, e.g. a MusicBrainz dump, gets files that match it)."""
    if files < 1:  # SQLite reads LIMIT -1 as no limit: every track of the catalog
        raise BadQuery(f"the number of files must be 1 or more, not {files}")
    _output_folder(out)
    rows = archive.conn.execute(ARCHIVE_TRACKS_SQL, (max_seconds * 1000, files)).fetchall()
    written: list[Path] = []
    for rowid, name, number, isrc, duration, album, date, artists in rows:
        track = {"id": f"track:{rowid}", "name": name, "track_number": number, "isrc": isrc,
                 "duration_ms": duration, "artists": json.loads(artists)}
        written.append(render_track(out, len(written), track,
                                    {"name": album, "release_date": date}))
        progress(len(written), len(rows))
    return written

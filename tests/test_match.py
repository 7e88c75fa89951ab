"""Synthetic audio of a synthetic catalog: ingest matches by ISRC, fuzzy tags and sound."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.ingest.match import match_files, score
from musicark.ingest.pipeline import ingest
from musicark.synth import write_catalog
from musicark.synth_audio import write_audio


def _reencode_untagged(src: Path, dst: Path) -> None:
    """Another encoding of the same audio (Opus → 96 kbit/s MP3), with no tags at all."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=44_100, layout="mono")
        stream.bit_rate = 96_000
        resampler = av.AudioResampler(format="s16p", layout="mono", rate=44_100)
        for frame in inp.decode(audio=0):
            for converted in resampler.resample(frame):
                out.mux(stream.encode(converted))
        out.mux(stream.encode(None))


def test_ingest_matches_synthetic_audio(archive: Archive, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.csv"
    write_catalog(catalog, 5000, seed=3)
    import_source(archive, "table", catalog)
    music = tmp_path / "music"
    files = write_audio(music, 8, seed=3, catalog_tracks=5000)
    _reencode_untagged(files[2], music / "zz-untagged-copy.mp3")
    report = ingest(archive, [music], workers=2)
    assert report.ingested == 9 and report.near_duplicates == 1
    links = archive.conn.execute(
        "SELECT p.path, t.name, tf.method, tf.score FROM track_files tf "
        "JOIN tracks t ON t.rowid = tf.track_rowid JOIN file_paths p "
        "ON p.file_rowid = tf.file_rowid ORDER BY p.path").fetchall()
    methods = [m for _, _, m, _ in links]
    assert methods.count("isrc") == 6 and methods.count("fuzzy") == 2
    assert methods.count("fingerprint") == 1
    by_path = {Path(p).name: name for p, name, _, _ in links}
    assert by_path["zz-untagged-copy.mp3"] == by_path[files[2].name]
    for path, name, method, value in links:
        if method == "fuzzy":
            assert value >= 0.8 and name.replace(" ", "_")[:10] in Path(path).name
    # Rematching gives the same links.
    again = match_files(archive, rematch=True)
    assert sum(again.matched.values()) == 9
    assert archive.conn.execute("SELECT count(*) FROM track_files").fetchone()[0] == len(links)


def test_scores_follow_title_then_length() -> None:
    track = {"name": "Hoppípolla", "artists": "Sigur Rós", "album": "Takk...",
             "duration_ms": 268_000}
    exact = score({"title": "Hoppipolla", "artists": ["Sigur Ros"], "album": "Takk"},
                  268_500, track)
    wrong_length = score({"title": "Hoppipolla", "artists": ["Sigur Ros"]}, 120_000, track)
    other_title = score({"title": "Glósóli", "artists": ["Sigur Rós"], "album": "Takk..."},
                        268_000, track)
    assert exact > 0.95 and wrong_length < 0.8 and other_title < 0.8


def _tone_flac(path: Path, tags: dict[str, str], seconds: int = 5) -> None:
    from mutagen.flac import FLAC

    with av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=22_050, layout="mono")
        pcm = (np.sin(np.arange(22_050 * seconds) / 7) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 22_050, 0, Fraction(1, 22_050)
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    audio = FLAC(path)
    audio.update(tags)
    audio.save()


def test_musicbrainz_recording_id_matches(archive: Archive, tmp_path: Path) -> None:
    mbid = "8883356e-3c5e-4eb0-ad1c-89c05cc4a835"
    src = tmp_path / "c.csv"
    src.write_text(f"track_id,name,mbid\n1,Yeh Mojeza,{mbid}\n2,Other,\n")
    import_source(archive, "table", src)
    _tone_flac(tmp_path / "m.flac", {"title": "Untitled", "musicbrainz_trackid": mbid.upper()})
    assert ingest(archive, [tmp_path / "m.flac"], workers=1).matched == 1
    assert archive.conn.execute("SELECT track_rowid, method, score FROM track_files"
                                ).fetchall() == [(1, "mbid", 1.0)]


def test_nothing_is_guessed(archive: Archive, tmp_path: Path) -> None:
    """A file whose tags resemble no catalog track stays unmatched and is reported."""
    src = tmp_path / "c.csv"
    src.write_text("track_id,name,artists,duration_ms\n1,Completely Different,Nobody,60000\n")
    import_source(archive, "table", src)
    path = tmp_path / "x.flac"
    _tone_flac(path, {"title": "Something Else Entirely", "artist": "Somebody"})
    report = ingest(archive, [path], workers=1)
    assert report.matched == 0
    result = match_files(archive)
    assert report.ingested == 1 and result.matched == {}
    assert result.unmatched == [{"file": 1, "title": "Something Else Entirely",
                                 "artists": ["Somebody"]}]
    assert archive.conn.execute("SELECT count(*) FROM track_files").fetchone()[0] == 0

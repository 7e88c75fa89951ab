"""`musicark analyse`, `ledger --flag`, `show track:N` and `ingest --analyse`: results in
the catalog (migration 16), a resumable run, album gain over an album held whole, a broken
file as one failed result, a decoder crash as one failed file, and Dask like local
processes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from analyse_signals import music_like, sequence, transcode, write
from musicark.analyse.loudness import gated_loudness, merge, unpack
from musicark.analyse.measure import analyse_file
from musicark.analyse.run import analyse_archive
from musicark.analyse.run import analyse_batch as REAL_BATCH
from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.cli import app
from musicark.ingest.pipeline import ingest
from musicark.synth import write_catalog
from musicark.synth_audio import write_audio

TRACKS = 3000
runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """The inputs: 4 catalog-matched synthetic tracks, a fake-lossless FLAC (from MP3), a
    clipped FLAC, and a FLAC whose frames are garbage after its header."""
    root = tmp_path_factory.mktemp("analyse-inputs")
    music = root / "music"
    write_catalog(root / "catalog.csv", TRACKS, seed=11)
    write_audio(music, 4, seed=11, catalog_tracks=TRACKS)
    source = write(root / "source.flac", music_like(12.0), rate=44100)
    transcode(transcode(source, root / "lossy.mp3", "libmp3lame", 128_000),
              music / "fake.flac", "flac")
    clipped = np.clip(sequence([(3.0, 4.0)]), -1, 1)
    write(music / "clipped.flac", clipped)
    good = (music / "clipped.flac").read_bytes()
    (music / "broken.flac").write_bytes(good[:8192] + bytes(range(256)) * 200)
    return root


def new_archive(made: Path, tmp_path: Path) -> Path:
    path = tmp_path / "arc"
    with Archive.create(path) as archive:
        import_source(archive, "table", made / "catalog.csv")
    return path


def test_analyse_records_resumes_and_lists_flags(made, tmp_path, monkeypatch) -> None:
    arc = new_archive(made, tmp_path)
    with Archive.open(arc) as archive:
        ingest(archive, [made / "music"], workers=1)
    monkeypatch.setenv("MUSICARK_ARCHIVE", str(arc))
    code, output = cli("analyse", "--workers", "2", "--json")
    assert code == 0, output
    summary = json.loads(output)
    with Archive.open(arc) as archive:
        conn = archive.conn
        audio = conn.execute("SELECT count(*) FROM files WHERE codec IS NOT NULL "
                             "AND status = 'ok'").fetchone()[0]
        assert summary["analysed"] + summary["failed"] == audio == summary["selected"]
        assert summary["remaining"] == 0
        outcomes = dict(conn.execute("SELECT outcome, count(*) FROM analyses GROUP BY 1"))
        flags = {r[0] for r in conn.execute("SELECT DISTINCT flag FROM analysis_flags")}
    assert outcomes.get("ok", 0) >= 6
    assert {"fake-lossless", "clipping"} <= flags
    # nothing left: the next run selects nothing and writes nothing
    code, output = cli("analyse", "--json")
    assert code == 0 and json.loads(output)["selected"] == 0

    code, output = cli("ledger", "--flag", "fake-lossless", "--json")
    rows = json.loads(output)
    assert code == 0 and len(rows) == 1 and rows[0]["path"].endswith("fake.flac")
    assert 15_000 <= rows[0]["value"] <= 17_500 and rows[0]["confidence"] >= 0.5
    code, output = cli("ledger", "--flag", "clipping")
    assert code == 0 and "clipped.flac" in output
    code, output = cli("ledger", "--flag", "loud")
    assert code == 2 and output.count("\n") == 1 and "--flag must be one of" in output

    with Archive.open(arc) as archive:
        track = archive.conn.execute("SELECT min(track_rowid) FROM track_files").fetchone()[0]
    code, output = cli("show", f"track:{track}", "--json")
    loudness = json.loads(output)["loudness"]
    assert loudness["outcome"] == "ok" and loudness["integrated_lufs"] < 0
    assert loudness["track_gain_db"] == pytest.approx(-18 - loudness["integrated_lufs"],
                                                      abs=0.011)
    code, output = cli("show", f"track:{track}")
    assert code == 0 and "LUFS" in output and "track gain" in output


def test_a_failed_file_is_one_line_and_the_batch_goes_on(made, tmp_path) -> None:
    arc = new_archive(made, tmp_path)
    with Archive.open(arc) as archive:
        ingest(archive, [made / "music" / "broken.flac", made / "music" / "clipped.flac"],
               workers=1)
        summary = analyse_archive(archive, workers=1)
        reasons = archive.conn.execute("SELECT reason FROM analyses WHERE outcome = 'failed'"
                                       ).fetchall()
    assert summary["analysed"] >= 1
    for (reason,) in reasons:
        assert reason and "\n" not in reason and "Traceback" not in reason


def test_limit_then_resume_oldest_first(made, tmp_path) -> None:
    arc = new_archive(made, tmp_path)
    with Archive.open(arc) as archive:
        ingest(archive, [made / "music"], workers=1)
        first = analyse_archive(archive, workers=1, limit=2)
        order = [r[0] for r in archive.conn.execute(
            "SELECT file_id FROM analyses ORDER BY file_id")]
        due = archive.conn.execute("SELECT rowid FROM files WHERE codec IS NOT NULL "
                                   "AND status = 'ok' ORDER BY rowid").fetchall()
        assert first["selected"] == 2 and order == [r[0] for r in due[:2]]
        rest = analyse_archive(archive, workers=1)
        assert rest["selected"] == len(due) - 2 and rest["remaining"] == 0


def test_album_gain_over_an_album_held_whole(made, tmp_path) -> None:
    """An album gets a gain only once every one of its tracks has an analysed file; the
    gain is the gated loudness of all its tracks' blocks together (ReplayGain 2.0)."""
    arc = new_archive(made, tmp_path)
    loud = write(tmp_path / "loud.flac", sequence([(-12.0, 20.0)]))
    soft = write(tmp_path / "soft.flac", sequence([(-30.0, 20.0)]))
    with Archive.open(arc) as archive:
        conn = archive.conn
        ingest(archive, [loud, soft], workers=1, match=False)
        album = conn.execute("SELECT album_rowid FROM tracks GROUP BY album_rowid "
                             "HAVING count(*) = 2 LIMIT 1").fetchone()[0]
        tracks = [r[0] for r in conn.execute(
            "SELECT rowid FROM tracks WHERE album_rowid = ? ORDER BY rowid", (album,))]
        files = [r[0] for r in conn.execute("SELECT rowid FROM files ORDER BY rowid")]
        conn.execute("INSERT INTO track_files(track_rowid, file_rowid, method) "
                     "VALUES (?, ?, 'manual')", (tracks[0], files[0]))
        analyse_archive(archive, workers=1)
        assert conn.execute("SELECT count(*) FROM album_loudness").fetchone()[0] == 0
        conn.execute("INSERT INTO track_files(track_rowid, file_rowid, method) "
                     "VALUES (?, ?, 'manual')", (tracks[1], files[1]))
        conn.execute("DELETE FROM analyses")  # analyse again: the album is whole now
        analyse_archive(archive, workers=1)
        lufs, gain, peak, count = conn.execute(
            "SELECT integrated_lufs, gain_db, peak, tracks FROM album_loudness "
            "WHERE album_id = ?", (album,)).fetchone()
    expected = gated_loudness(merge([unpack(analyse_file(str(p)).blocks) for p in (loud, soft)]))
    assert count == 2 and lufs == pytest.approx(expected, abs=0.01)
    assert gain == pytest.approx(-18.0 - lufs, abs=0.011)
    assert peak == pytest.approx(10 ** (-12 / 20), abs=0.01)


def test_ingest_analyse_measures_what_it_stored(made, tmp_path, monkeypatch) -> None:
    arc = new_archive(made, tmp_path)
    monkeypatch.setenv("MUSICARK_ARCHIVE", str(arc))
    code, output = cli("ingest", str(made / "music" / "clipped.flac"), "--analyse", "--json")
    assert code == 0, output
    data = json.loads(output)
    assert data["analysis"]["analysed"] == 1 and data["analysis"]["flags"]["clipping"] == 1
    code, output = cli("ingest", str(made / "music" / "fake.flac"), "--json")
    assert "analysis" not in json.loads(output)  # off by default


def _dies_on_the_clipped_file(store_root: str, items):
    import os

    results = REAL_BATCH(store_root, items)  # the module's own, whatever is patched in
    if any("clipping" in r.flags for _, r in results):
        os._exit(9)
    return results


def test_a_decoder_crash_is_one_failed_file(made, tmp_path, monkeypatch) -> None:
    import musicark.analyse.run as run

    arc = new_archive(made, tmp_path)
    with Archive.open(arc) as archive:
        ingest(archive, [made / "music"], workers=1)
        monkeypatch.setattr(run, "analyse_batch", _dies_on_the_clipped_file)
        summary = analyse_archive(archive, workers=2)
        crashed = archive.conn.execute("SELECT reason FROM analyses WHERE reason LIKE "
                                       "'the decoder crashed%'").fetchall()
    assert len(crashed) == 1 and "worker died" in crashed[0][0]
    assert summary["remaining"] == 0


def test_dask_analyses_as_local_processes_do(made, tmp_path) -> None:
    distributed = pytest.importorskip("distributed")
    arc = new_archive(made, tmp_path)
    with Archive.open(arc) as archive:
        ingest(archive, [made / "music"], workers=1)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2,
                            dashboard_address=None) as client, \
            Archive.open(arc) as archive:
        summary = analyse_archive(archive, dask=client)
        rows = archive.conn.execute("SELECT file_id, outcome, integrated_lufs FROM analyses "
                                    "ORDER BY file_id").fetchall()
    with Archive.open(arc) as archive:
        archive.conn.execute("DELETE FROM analyses")
        analyse_archive(archive, workers=2)
        again = archive.conn.execute("SELECT file_id, outcome, integrated_lufs FROM analyses "
                                     "ORDER BY file_id").fetchall()
    assert summary["remaining"] == 0 and rows == again


def test_api_web_page_and_subsonic_show_the_analysis(made, tmp_path) -> None:
    """The JSON API's track, the web track page and Subsonic's OpenSubsonic `replayGain`
    (JSON and XML) carry the analysis; a track not analysed has no replayGain."""
    from fastapi.testclient import TestClient

    from musicark.serve import create_app
    from musicark.serve.subsonic.entries import songs
    from musicark.serve.subsonic.responses import render

    arc = new_archive(made, tmp_path)
    with Archive.open(arc) as archive:
        ingest(archive, [made / "music"], workers=1)
        tracks = [r[0] for r in archive.conn.execute(
            "SELECT DISTINCT track_rowid FROM track_files ORDER BY 1")]
        assert [s.get("replayGain") for s in songs(archive, tracks)] == [None] * len(tracks)
        analyse_archive(archive, workers=1)
        song = songs(archive, tracks[:1])[0]
        gain = song["replayGain"]
        file_gain = archive.conn.execute(
            "SELECT a.track_gain_db, a.track_peak FROM analyses a JOIN track_files tf "
            "ON tf.file_rowid = a.file_id WHERE tf.track_rowid = ?", (tracks[0],)).fetchone()
        assert (gain["trackGain"], gain["trackPeak"]) == file_gain and gain["baseGain"] == 0
        xml = render({"song": song}, "xml").body.decode()
        assert f'trackGain="{gain["trackGain"]}"' in xml and "<replayGain " in xml
    client = TestClient(create_app(arc), raise_server_exceptions=False)
    data = client.get(f"/api/v1/tracks/{tracks[0]}").json()
    assert data["loudness"]["track_gain_db"] == gain["trackGain"]
    page = client.get(f"/track/{tracks[0]}").text
    assert "Loudness and quality" in page and "LUFS" in page


def test_stats_plot_loudness_by_decade_and_popularity(made, tmp_path, monkeypatch) -> None:
    arc = new_archive(made, tmp_path)
    monkeypatch.setenv("MUSICARK_ARCHIVE", str(arc))
    code, output = cli("stats", "--json")
    assert json.loads(output)["loudness"] is None  # nothing analysed yet
    with Archive.open(arc) as archive:
        ingest(archive, [made / "music"], workers=1)
        analyse_archive(archive, workers=1)
        held = archive.conn.execute(
            "SELECT count(*) FROM analyses a JOIN track_files tf ON tf.file_rowid = a.file_id "
            "WHERE a.integrated_lufs IS NOT NULL").fetchone()[0]
    code, output = cli("stats", "--json", "--plots", str(tmp_path / "charts"))
    data = json.loads(output)
    loudness = data["loudness"]
    assert sum(r["files"] for r in loudness["by_decade"]) == held > 0
    assert sum(r["files"] for r in loudness["by_popularity"]) == held
    assert loudness["flags"]["fake-lossless"] == 1 and loudness["flags"]["clipping"] >= 1
    assert any(p.endswith("loudness_by_decade.png") for p in data["plots"])
    code, output = cli("stats")
    assert code == 0 and "loudness by decade" in output and "analysis flags" in output

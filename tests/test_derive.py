"""Derive: verified Opus encodes for a plan's opus75 tracks; idempotent."""

from __future__ import annotations

import faulthandler
from pathlib import Path

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.derive.run import derive
from musicark.ingest.match import match_files
from musicark.ingest.pipeline import ingest
from musicark.ingest.probe import probe
from musicark.ingest.store import Store, sha256_file
from musicark.plan.plans import create_plan
from musicark.synth import write_catalog
from musicark.synth_audio import write_audio


def _planned(archive: Archive, tmp_path: Path, seed: int) -> int:
    """A catalog, four matched synthetic files, and a plan keeping every track as Opus."""
    catalog = tmp_path / "catalog.csv"
    write_catalog(catalog, 3000, seed=seed)
    import_source(archive, "table", catalog)
    music = write_audio(tmp_path / "music", 4, seed=seed, catalog_tracks=3000)
    assert ingest(archive, music, workers=2).matched == 4
    return create_plan(archive, "3GB", tiers=("opus75",))[0]


def test_derive_encodes_plan_opus_tracks_once(archive: Archive, tmp_path: Path) -> None:
    plan_id = _planned(archive, tmp_path, seed=5)
    report = derive(archive, plan_id, workers=2)
    inputs = archive.conn.execute(
        "SELECT count(DISTINCT tf.file_rowid) FROM plan_items pi JOIN track_files tf "
        "ON tf.track_rowid = pi.track_rowid WHERE pi.plan_id = ? AND pi.tier = 'opus75'",
        (plan_id,)).fetchone()[0]
    # The synthetic sources are small: an Opus encode that is no smaller is not kept, and
    # the original stands in for it (a derivation onto itself, so nothing is encoded again).
    # Sources already Opus, or lossy at about the Opus bit rate (the 96 kbit/s MP3, the
    # 64 kbit/s AAC), are not even encoded.
    assert inputs == 4 and not report.failed
    assert report.encoded + report.kept_original + report.skipped_low_bitrate == 4
    assert report.encoded >= 1 and report.skipped_low_bitrate >= 1
    kept = archive.conn.execute(
        "SELECT count(*) FROM derivations WHERE kind = 'opus75' AND output_file = input_file "
        "AND params LIKE '%\"kept\": \"original\"%'").fetchone()[0]
    assert kept == report.kept_original + report.skipped_low_bitrate
    skipped = archive.conn.execute(
        "SELECT i.size * 8000.0 / i.duration_ms FROM derivations d JOIN files i "
        "ON i.rowid = d.input_file WHERE d.kind = 'opus75' AND d.params LIKE '%why%'").fetchall()
    assert len(skipped) == report.skipped_low_bitrate
    assert all(rate <= 75_000 * 1.3 for (rate,) in skipped)
    store = Store(archive.store_path)
    stored = {p.name for p in (archive.store_path / "sha256").rglob("*") if p.is_file()}
    assert stored == {sha for (sha,) in archive.conn.execute("SELECT sha256 FROM files")}
    rows = archive.conn.execute(
        "SELECT i.duration_ms, o.sha256, o.codec, o.duration_ms FROM derivations d "
        "JOIN files i ON i.rowid = d.input_file JOIN files o ON o.rowid = d.output_file "
        "WHERE d.kind = 'opus75' AND d.output_file != d.input_file").fetchall()
    assert len(rows) == report.encoded
    for input_ms, sha, codec, output_ms in rows:
        path = store.path_for(sha)
        assert sha256_file(path)[0] == sha and codec == "opus"
        facts = probe(path, fingerprint=False)
        assert facts.codec == "opus" and abs(facts.duration_ms - input_ms) <= 50
        assert abs(output_ms - input_ms) <= 50
    again = derive(archive, plan_id, workers=2)
    assert (again.encoded, again.already) == (0, 4)
    assert again.nothing_because == "every opus75 file of the plan is derived already"


def test_tag_files_and_restore_through_the_archive(archive: Archive, tmp_path: Path) -> None:
    from musicark.derive.tagging import restore_file, tag_files

    plan_id = _planned(archive, tmp_path, seed=6)
    derive(archive, plan_id, workers=2)
    report = tag_files(archive, plan_id, workers=2)
    assert report["tagged"] == 4 and not report["failed"]
    again = tag_files(archive, plan_id)
    assert again["already"] == 4
    assert again["nothing_because"] == "every file the plan keeps is tagged already"
    rows = archive.conn.execute(
        "SELECT i.sha256, o.sha256 FROM derivations d JOIN files i ON i.rowid = d.input_file "
        "JOIN files o ON o.rowid = d.output_file WHERE d.kind = 'tagged'").fetchall()
    for input_sha, tagged_sha in rows:
        out = tmp_path / "restored.opus"
        assert restore_file(archive, tagged_sha, out) == input_sha
        assert sha256_file(out)[0] == input_sha
    # Files musicark made (Opus encodes, tagged copies, patches) are not matching material.
    assert match_files(archive).unmatched == []
    assert match_files(archive, unchecked_only=True).matched == {}


def test_opus_encodes_are_deterministic(testdata: Path, tmp_path: Path) -> None:
    """Same input, same bytes: mirrors that derive again get files equal to the archive's."""
    from musicark.derive.opus import encode_file

    source = sorted((testdata / "audio" / "music").rglob("*.ogg"))[0]
    first, second = tmp_path / "1.opus", tmp_path / "2.opus"
    encode_file(source, first)
    encode_file(source, second)
    assert sha256_file(first)[0] == sha256_file(second)[0]
    assert probe(first, fingerprint=False).codec == "opus"


def _crashing_encode(store_root: str, input_sha: str, input_ms: int, input_size=None):
    """An encoder that segfaults on every input, as FFmpeg might on crafted input."""
    import os
    import signal
    faulthandler.disable()  # pytest's dump of the crash is noise in the log
    os.kill(os.getpid(), signal.SIGSEGV)


def test_an_encoder_crash_fails_its_input_and_the_next_run_tries_again(
        archive: Archive, tmp_path: Path, monkeypatch) -> None:
    import musicark.derive.run as run_module

    plan_id = _planned(archive, tmp_path, seed=5)
    with monkeypatch.context() as patch:
        patch.setattr(run_module, "encode_opus", _crashing_encode)
        report = derive(archive, plan_id, workers=2)
    assert report.encoded == 0 and report.failed
    assert {f["reason"] for f in report.failed} == {
        "the encoder crashed (worker died: killed by SIGSEGV)"}
    again = derive(archive, plan_id, workers=2)
    assert not again.failed and again.encoded >= 1

"""One archive for the web tests: a synthetic catalog plus a source with hostile names,
tagged synthetic audio (ingested with a hostile provenance), a plan, encodes, tags and a
release."""

from __future__ import annotations

import csv
from pathlib import Path

from conftest import TESTDATA, require_testdata
from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.derive.run import derive
from musicark.derive.tagging import tag_files
from musicark.ingest.pipeline import ingest
from musicark.plan.plans import create_plan
from musicark.release import ReleaseOptions, create_release
from musicark.synth import write_catalog
from musicark.synth_audio import write_audio

TRACKS = 3000
SEED = 21
HOSTILE_NAME = '<script>alert("x")</script> Hostile'
HOSTILE_ARTIST = '"><img src=x onerror=alert(1)>'
HOSTILE_PROVENANCE = "<b>rips</b> & co"
HOSTILE_TAG_TITLE = "<script>alert('tag')</script>"
HOSTILE_TAG_ARTIST = "<img src=x onerror=alert(2)>"
# Real audio with embedded cover art (a JPEG in a METADATA_BLOCK_PICTURE), unmatched.
WITH_ART = TESTDATA / "audio" / "music" / "librosa-data" / "Kevin_MacLeod_-_Vibe_Ace.ogg"


def build(root: Path) -> Path:
    require_testdata()
    catalog = root / "catalog.csv"
    write_catalog(catalog, TRACKS, seed=SEED)
    hostile = root / "hostile.csv"
    with open(catalog, newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    row = dict.fromkeys(header, "")
    row.update(track_id="hostile1", name=HOSTILE_NAME, artist_ids="evil1",
               artists=HOSTILE_ARTIST, album_id="evilalbum", album="{{7*7}} ${x} %s",
               isrc="ZZHOS2600001", popularity="90", duration_ms="200000", disc_number="1",
               track_number="1")
    with open(hostile, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, header)
        writer.writeheader()
        writer.writerow(row)
    with Archive.create(root / "archive", name="web test") as archive:
        import_source(archive, "table", catalog)
        import_source(archive, "table", hostile, name="hostile")
        music = write_audio(root / "music", 6, seed=SEED, catalog_tracks=TRACKS)
        assert ingest(archive, music, workers=2, provenance=HOSTILE_PROVENANCE).matched == 6
        ingest(archive, [WITH_ART], workers=1, match=False)
        _hostile_tags(archive, root, music)
        plan_id, _ = create_plan(archive, "3GB")
        derive(archive, plan_id, workers=2)
        tag_files(archive, plan_id, workers=2)
        create_release(archive, "r1", ReleaseOptions(buckets="50,0", all_matched=True))
    return root / "archive"


def _hostile_tags(archive: Archive, root: Path, music: list[Path]) -> None:
    """A copy of a rendered FLAC whose own tags hold markup, matched by its ISRC to a
    catalog track that had no file: the track page shows what the file's tags say."""
    import shutil

    from mutagen.flac import FLAC

    isrc = archive.conn.execute(
        "SELECT rowid, isrc FROM tracks WHERE isrc IS NOT NULL AND rowid NOT IN "
        "(SELECT track_rowid FROM track_files) ORDER BY rowid DESC LIMIT 1").fetchone()[1]
    source = next(p for p in music if p.suffix == ".flac")
    copy = root / "hostile-tags" / "hostile.flac"
    copy.parent.mkdir()
    shutil.copyfile(source, copy)
    audio = FLAC(copy)
    audio["title"], audio["artist"], audio["isrc"] = HOSTILE_TAG_TITLE, HOSTILE_TAG_ARTIST, isrc
    audio.save()
    report = ingest(archive, [copy], workers=1)
    assert report.matched == 1, report

"""The smallest archive the server's hostile-request tests need: a synthetic catalog and two
matched synthetic files (no plan, no release), so each test module builds it in seconds."""

from __future__ import annotations

from pathlib import Path

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.ingest.pipeline import ingest
from musicark.synth import write_catalog
from musicark.synth_audio import write_audio

TRACKS = 200
SEED = 5


def small_archive(root: Path) -> Path:
    """Build it at `root / "archive"` and return its path."""
    catalog = root / "catalog.csv"
    write_catalog(catalog, TRACKS, seed=SEED)
    with Archive.create(root / "archive", name="small") as archive:
        import_source(archive, "table", catalog)
        music = write_audio(root / "music", 2, seed=SEED, catalog_tracks=TRACKS)
        assert ingest(archive, music, workers=1).matched == 2
    return root / "archive"


def matched_file(path: Path) -> tuple[int, str]:
    """A track with an ok file, and that file's SHA-256."""
    with Archive.open(path, readonly=True) as archive:
        return archive.conn.execute(
            "SELECT tf.track_rowid, f.sha256 FROM track_files tf JOIN files f "
            "ON f.rowid = tf.file_rowid WHERE f.status = 'ok' ORDER BY tf.track_rowid "
            "LIMIT 1").fetchone()

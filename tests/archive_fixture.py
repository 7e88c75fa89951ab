"""One way to build the small archive the release, fixity and mirror tests start from:
a synthetic catalog, 8 matched synthetic files, a plan keeping originals and Opus, the Opus
encodes and the tagged copies with their restore patches."""

from __future__ import annotations

from pathlib import Path

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.derive.run import derive
from musicark.derive.tagging import tag_files
from musicark.ingest.pipeline import ingest
from musicark.plan.plans import create_plan
from musicark.synth import write_catalog
from musicark.synth_audio import write_audio

TRACKS = 3000
SEED = 11


def planned_archive(root: Path, name: str = "archive") -> Path:
    """Build it at `root / name` (its inputs beside it in `root`) and return its path."""
    catalog = root / "catalog.csv"
    write_catalog(catalog, TRACKS, seed=SEED)
    with Archive.create(root / name) as archive:
        import_source(archive, "table", catalog)
        music = write_audio(root / "music", 8, seed=SEED, catalog_tracks=TRACKS)
        assert ingest(archive, music, workers=2).matched == 8
        plan_id, _ = create_plan(archive, "3GB")
        assert derive(archive, plan_id, workers=2).encoded >= 1
        tag_files(archive, plan_id, workers=2)
    return root / name

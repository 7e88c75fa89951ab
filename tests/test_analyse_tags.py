"""`tag` writes the gain tags of an analysed file: REPLAYGAIN_* (FLAC, Vorbis, MP3 TXXX,
MP4 freeform) and R128_TRACK_GAIN in Q7.8 for Opus; the restore patch still gives back the
original bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import mutagen
import pytest

from analyse_signals import sequence, write
from musicark.analyse.run import analyse_archive
from musicark.analyse.tags import gain_fields
from musicark.archive import Archive
from musicark.derive.tags import extension, restore, tag_stored
from musicark.ingest.pipeline import ingest
from musicark.ingest.store import Store
from test_tags_restore import FIELDS, FILES


def _raw_tag(path: Path, name: str) -> str | None:
    """A tag as the file holds it, read without mutagen's easy mapping."""
    audio = mutagen.File(path)
    for key in (f"TXXX:{name}", f"----:com.apple.iTunes:{name}", name, name.lower()):
        if audio.tags is not None and key in audio.tags:
            value = audio.tags[key]
            value = value.text[0] if hasattr(value, "text") else value[0]
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


@pytest.mark.parametrize("name", FILES)
def test_gain_tags_written_and_original_restored(name: str, archive: Archive,
                                                 testdata: Path) -> None:
    check(archive, testdata / "audio" / FILES[name])


def test_gain_tags_of_a_flac_with_sound(archive: Archive, tmp_path: Path) -> None:
    check(archive, write(tmp_path / "tone.flac", sequence([(-10.0, 5.0)])))


def check(archive: Archive, src: Path) -> None:
    ingest(archive, [src], workers=1, match=False)
    analyse_archive(archive, workers=1)
    file_id, sha, container, codec = archive.conn.execute(
        "SELECT rowid, sha256, container, codec FROM files").fetchone()
    gain, peak = archive.conn.execute("SELECT track_gain_db, track_peak FROM analyses"
                                      ).fetchone()
    gains = gain_fields(archive.conn, file_id, codec, track_id=0)
    if gain is None:  # digital silence: no gain to write
        assert gains == {}
        return
    result = tag_stored(str(archive.store_path), sha, FIELDS | gains, extension(container, codec))
    assert result["ok"], result
    store = Store(archive.store_path)
    copy = store.path_for(result["output"]).with_name("probe" + extension(container, codec))
    copy.write_bytes(store.path_for(result["output"]).read_bytes())
    if codec == "opus":
        assert _raw_tag(copy, "R128_TRACK_GAIN") == str(round((gain - 5) * 256))
        assert _raw_tag(copy, "REPLAYGAIN_TRACK_GAIN") is None
    else:
        assert _raw_tag(copy, "REPLAYGAIN_TRACK_GAIN").upper() == f"{gain:.2f} DB"
        assert float(_raw_tag(copy, "REPLAYGAIN_TRACK_PEAK")) == pytest.approx(peak, abs=1e-6)
    copy.unlink()
    original = restore(store, result["output"], result["patch"], sha)
    assert hashlib.sha256(original).hexdigest() == sha

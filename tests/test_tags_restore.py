"""Tags embedded without re-encoding, and byte-exact restore, for every format mutagen
writes among the shared audio."""

from __future__ import annotations

import hashlib
from pathlib import Path

import mutagen
import pytest

from musicark.archive import Archive
from musicark.derive.tags import extension, restore, tag_stored
from musicark.ingest.pipeline import ingest
from musicark.ingest.store import Store

FILES = {
    "ogg vorbis": "music/librosa-data/Kevin_MacLeod_-_Vibe_Ace.ogg",
    "opus": "music/espressif-samples-kevin-macleod/gs-16b-1c-16000hz.opus",
    "flac": "mutagen/silence-44-s.flac",
    "mp3": "music/fma/000002.mp3",
    "m4a (alac)": "music/espressif-samples-kevin-macleod/gs-16b-1c-44100hz.m4a",
    "m4a (aac)": "mutagen/has-tags.m4a",
}
FIELDS = {"title": "Hoppípolla", "artist": ["Sigur Rós", "Guest"], "album": "Takk…",
          "tracknumber": 3, "date": "2005", "isrc": "GBAAA0500001", "barcode": "0094634177720",
          "musicbrainz_trackid": "8883356e-3c5e-4eb0-ad1c-89c05cc4a835",
          "licence": "CC-BY-4.0", "musicark_id": "track:1"}


@pytest.mark.parametrize("name", FILES)
def test_tag_then_restore_byte_exact(name: str, archive: Archive, testdata: Path) -> None:
    src = testdata / "audio" / FILES[name]
    ingest(archive, [src], workers=1, match=False)
    sha, container, codec, size = archive.conn.execute(
        "SELECT sha256, container, codec, size FROM files").fetchone()
    result = tag_stored(str(archive.store_path), sha, FIELDS, extension(container, codec))
    assert result["ok"], result
    store = Store(archive.store_path)
    tagged = store.path_for(result["output"])
    copy = tagged.with_name("probe" + extension(container, codec))
    copy.write_bytes(tagged.read_bytes())
    tags = mutagen.File(copy, easy=True)
    assert tags["title"] == ["Hoppípolla"] and tags["artist"] == ["Sigur Rós", "Guest"]
    copy.unlink()
    original = restore(store, result["output"], result["patch"], sha)
    assert hashlib.sha256(original).hexdigest() == sha == hashlib.sha256(
        src.read_bytes()).hexdigest()
    # The patch is about the size of the tag change, not of the audio.
    assert result["patch_size"] < min(2_000, size / 10)

"""Cover art is served only as a raster image whose type comes from its own bytes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, ID3

from musicark.serve.art import cover_art, sniff_raster

SCRIPT = b"<script>alert(document.domain)</script>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def test_sniff_raster_knows_the_four_formats_and_nothing_else() -> None:
    assert sniff_raster(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_raster(PNG) == "image/png"
    assert sniff_raster(b"GIF89a....") == "image/gif"
    assert sniff_raster(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "image/webp"
    for hostile in (SCRIPT, SVG, b"", b"RIFF\x10\x00\x00\x00WAVEfmt ", b"\xff\xd8"):
        assert sniff_raster(hostile) is None


def _flac_with(tmp_path: Path, testdata: Path, *pictures: tuple[str, bytes]) -> Path:
    path = tmp_path / "art.flac"
    shutil.copyfile(testdata / "audio" / "mutagen" / "silence-44-s.flac", path)
    audio = FLAC(path)
    audio.clear_pictures()
    for mime, data in pictures:
        picture = Picture()
        picture.type, picture.mime, picture.data = 3, mime, data
        audio.add_picture(picture)
    audio.save()
    return path


@pytest.mark.parametrize("mime,data", [("text/html", SCRIPT), ("image/svg+xml", SVG),
                                       ("image/jpeg", SCRIPT)])
def test_a_picture_that_is_not_a_raster_image_is_not_art(tmp_path: Path, testdata: Path,
                                                         mime: str, data: bytes) -> None:
    assert cover_art(_flac_with(tmp_path, testdata, (mime, data))) is None


def test_the_declared_type_is_ignored_for_the_sniffed_one(tmp_path: Path,
                                                          testdata: Path) -> None:
    path = _flac_with(tmp_path, testdata, ("text/html", SCRIPT), ("text/html", PNG))
    assert cover_art(path) == (PNG, "image/png")


def test_id3_apic_with_html_is_not_art(tmp_path: Path, testdata: Path) -> None:
    path = tmp_path / "art.mp3"
    shutil.copyfile(testdata / "audio" / "music" / "fma" / "000002.mp3", path)
    tags = ID3(path)
    tags.delall("APIC")
    tags.add(APIC(encoding=3, mime="text/html", type=3, desc="x", data=SCRIPT))
    tags.save(path)
    assert cover_art(path) is None


def test_the_art_cache_is_capped_in_bytes_not_only_in_pictures(monkeypatch) -> None:
    """Pictures are MBs each: 512 of them could hold GBs per process. The cache keeps at
    most its byte cap, oldest out first, and serves (without keeping) one over a quarter."""
    from musicark.serve import pages

    sizes = {f"sha{i}": 3 << 20 for i in range(20)} | {"big": 9 << 20, "none": 0}
    monkeypatch.setattr(pages.queries, "stored_file", lambda archive, sha: (Path(sha), None))
    monkeypatch.setattr(pages, "cover_art", lambda path: (
        (b"\xff\xd8\xff" + bytes(sizes[str(path)] - 3), "image/jpeg") if sizes[str(path)]
        else None))
    cache = pages.ArtCache(max_bytes=32 << 20)
    for i in range(20):
        assert len(cache.get(None, f"sha{i}")[0]) == 3 << 20
        assert cache.held_bytes <= 32 << 20
    assert cache.held_bytes == 10 * (3 << 20)  # the ten most recent
    assert cache.get(None, "big")[0][:3] == b"\xff\xd8\xff"  # served, not kept
    assert cache.held_bytes == 10 * (3 << 20)
    assert cache.get(None, "none") is None and cache.held_bytes == 10 * (3 << 20)
    calls = []
    monkeypatch.setattr(pages.queries, "stored_file",
                        lambda archive, sha: calls.append(sha) or (Path(sha), None))
    cache.get(None, "sha19")
    cache.get(None, "sha0")
    assert calls == ["sha0"]  # sha19 was kept, sha0 was evicted

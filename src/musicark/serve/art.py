"""Cover art embedded in audio files, served only as raster images sniffed from their bytes.

A picture frame's MIME type is whatever the file's author wrote (`text/html`, `image/svg+xml`
with a script): trusting it would let a tag run script in the archive's origin. The type is
therefore taken from the image's own magic bytes, and anything that is not JPEG, PNG, GIF or
WebP is not art.
"""

from __future__ import annotations

import base64
from pathlib import Path

RASTER_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def sniff_raster(data: bytes) -> str | None:
    """The MIME type of a JPEG, PNG, GIF or WebP image from its first bytes, else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def embedded_pictures(path: Path):
    """Every picture a file embeds, in tag order (FLAC/Ogg pictures, ID3 APIC, MP4 covr)."""
    import mutagen
    from mutagen.flac import Picture

    try:
        audio = mutagen.File(path)
    except Exception:  # noqa: BLE001 - a file mutagen cannot read has no art to show
        return
    if audio is None:
        return
    for picture in getattr(audio, "pictures", []) or []:
        yield bytes(picture.data)
    tags = audio.tags or {}
    for key in list(getattr(tags, "keys", list)()):
        if str(key).startswith("APIC"):
            yield bytes(tags[key].data)
    if not hasattr(tags, "get"):
        return
    for cover in tags.get("covr", []) or []:
        yield bytes(cover)
    for block in tags.get("metadata_block_picture", []) or []:
        try:
            yield bytes(Picture(base64.b64decode(block)).data)
        except Exception:  # noqa: BLE001 - a malformed picture block is skipped
            continue


def cover_art(path: Path) -> tuple[bytes, str] | None:
    """The first embedded picture that really is a raster image, with its sniffed type."""
    for data in embedded_pictures(path):
        mime = sniff_raster(data)
        if mime is not None:
            return data, mime
    return None

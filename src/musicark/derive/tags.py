"""Embed catalog metadata into a copy of a stored file, without re-encoding (mutagen), and
keep a zstd patch that restores the untagged bytes exactly."""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path
from typing import Any

import mutagen
import zstandard
from mutagen.easyid3 import EasyID3
from mutagen.easymp4 import EasyMP4Tags

from musicark.derive.patch import apply_patch, make_patch
from musicark.ingest.store import ChecksumMismatch, Store

KIND = "tagged"
EasyID3.RegisterTXXXKey("musicark_id", "MUSICARK_ID")
EasyID3.RegisterTXXXKey("licence", "LICENSE")
EasyID3.RegisterTXXXKey("barcode", "BARCODE")
EasyMP4Tags.RegisterFreeformKey("musicark_id", "MUSICARK_ID")
EasyMP4Tags.RegisterFreeformKey("licence", "LICENSE")
EasyMP4Tags.RegisterFreeformKey("barcode", "BARCODE")
EasyMP4Tags.RegisterFreeformKey("isrc", "ISRC")
for _gain in ("track_gain", "track_peak", "album_gain", "album_peak"):  # musicark.analyse.tags
    EasyID3.RegisterTXXXKey(f"replaygain_{_gain}", f"REPLAYGAIN_{_gain.upper()}")
    EasyMP4Tags.RegisterFreeformKey(f"replaygain_{_gain}", f"REPLAYGAIN_{_gain.upper()}")


class CannotTag(Exception):
    """mutagen cannot write tags to this file's format."""


def write_tags(path: Path, fields: dict[str, Any]) -> None:
    """Write common fields with mutagen's easy interfaces (ID3, MP4, Vorbis/FLAC/Opus)."""
    try:
        audio = mutagen.File(path, easy=True)
    except mutagen.MutagenError as exc:
        raise CannotTag(str(exc)) from exc
    if audio is None:
        raise CannotTag("mutagen does not know this format")
    if audio.tags is None:
        audio.add_tags()
    for key, value in fields.items():
        if value is None or value == []:
            continue
        values = value if isinstance(value, list) else [str(value)]
        try:
            audio[key] = values
        except (KeyError, ValueError, mutagen.MutagenError):
            continue  # a field this format has no place for
    try:
        audio.save()
    except mutagen.MutagenError as exc:
        raise CannotTag(str(exc)) from exc


EXTENSIONS = {("mp3", None): ".mp3", ("flac", None): ".flac", ("ogg", "opus"): ".opus",
              ("ogg", None): ".ogg", ("mov,mp4,m4a,3gp,3g2,mj2", None): ".m4a",
              ("ipod", None): ".m4a", ("mp4", None): ".m4a"}


def extension(container: str | None, codec: str | None) -> str:
    """A file name extension mutagen recognises, from FFmpeg's container and codec names."""
    return EXTENSIONS.get((container, codec)) or EXTENSIONS.get((container, None)) or ""


def tag_stored(store_root: str, input_sha: str, fields: dict[str, Any],
               ext: str = "") -> dict[str, Any]:
    """Tag a copy of a stored file; store the copy and the patch back to the original.
    Returns {"ok", "output", "patch", "patch_size"} or {"ok": False, "reason"}."""
    store = Store(Path(store_root))
    source = store.path_for(input_sha)
    store.tmp.mkdir(parents=True, exist_ok=True)
    tmp = store.tmp / f"{uuid.uuid4().hex}.part{ext}"
    patch_tmp = store.tmp / f"{uuid.uuid4().hex}.zst.part"
    try:
        shutil.copyfile(source, tmp)
        tmp.chmod(0o644)
        write_tags(tmp, fields)
        original, tagged = source.read_bytes(), tmp.read_bytes()
        patch = make_patch(original, tagged)
        if apply_patch(tagged, patch) != original:
            raise ChecksumMismatch("the patch does not rebuild the original")
        patch_tmp.write_bytes(patch)
        out_sha, _ = store.put(tmp)
        patch_sha, patch_size = store.put(patch_tmp)
        return {"ok": True, "output": out_sha, "patch": patch_sha, "patch_size": patch_size}
    except (CannotTag, ChecksumMismatch, OSError) as exc:
        return {"ok": False, "reason": f"{type(exc).__name__}: {exc}"}
    finally:
        tmp.unlink(missing_ok=True)
        patch_tmp.unlink(missing_ok=True)


def restore(store: Store, tagged_sha: str, patch_sha: str, expected_sha: str) -> bytes:
    """The original bytes, rebuilt from the tagged file and its patch, checked by SHA-256.

    Both inputs are checked against their own SHA-256 first, so a damaged store file is named
    as such (exit 11) rather than surfacing as a decoder error."""
    tagged = _stored_bytes(store, tagged_sha, "tagged file")
    patch = _stored_bytes(store, patch_sha, "restore patch")
    try:
        rebuilt = apply_patch(tagged, patch)
    except zstandard.ZstdError as exc:
        raise ChecksumMismatch(f"the restore patch sha256:{patch_sha} does not decode "
                               f"({exc})") from exc
    if hashlib.sha256(rebuilt).hexdigest() != expected_sha:
        raise ChecksumMismatch(f"restored bytes do not match sha256:{expected_sha}; "
                               "nothing was written")
    return rebuilt


def _stored_bytes(store: Store, sha: str, what: str) -> bytes:
    try:
        data = store.path_for(sha).read_bytes()
    except FileNotFoundError:
        raise ChecksumMismatch(f"the {what} sha256:{sha} is missing from the store") from None
    if hashlib.sha256(data).hexdigest() != sha:
        raise ChecksumMismatch(f"the {what} sha256:{sha} is damaged in the store: its bytes "
                               "no longer match its SHA-256")
    return data



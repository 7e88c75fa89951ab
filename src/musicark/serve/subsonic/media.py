"""stream, download, getCoverArt and scrobble. Every file is found through the ledger from a
song id, never from request text; originals go out with Range support, transcodes stream
from PyAV as they are encoded."""

from __future__ import annotations

import io
import json
import os
from typing import TYPE_CHECKING, Any

from fastapi.responses import Response, StreamingResponse

from musicark.archive import utc_now
from musicark.errors import NotInCatalog
from musicark.serve import queries
from musicark.serve.middleware import StoreFileResponse
from musicark.serve.subsonic import entries
from musicark.serve.subsonic.entries import FORMATS, LOSSLESS, parse_id
from musicark.serve.subsonic.responses import GENERIC, NOT_FOUND, SubsonicError
from musicark.serve.subsonic.transcode import (
    TARGETS,
    bitrate_for,
    estimated_length,
    transcode,
)

if TYPE_CHECKING:
    from musicark.serve.subsonic.call import Call

MAX_ART_SIZE = 3000
ART_HEADERS = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}


def _song_file(call: Call) -> tuple[int, dict[str, Any], Any]:
    rowid = parse_id(call.require("id"), "tr")
    file = entries.song_files(call.archive, [rowid]).get(rowid)
    if file is None:
        raise SubsonicError(NOT_FOUND, "no such song")
    try:
        path, _ = queries.stored_file(call.archive, file["sha256"])
    except NotInCatalog as exc:
        raise SubsonicError(NOT_FOUND, str(exc)) from None
    return rowid, file, path


def _original(file: dict[str, Any], path, *, attachment: str | None = None) -> Response:
    media_type = FORMATS.get(file["codec"], ("", "application/octet-stream"))[1]
    return StoreFileResponse(path, media_type=media_type, filename=attachment,
                             headers={"Cache-Control": "private, max-age=31536000, immutable",
                                      "X-Content-Type-Options": "nosniff"})


def _target(call: Call, file: dict[str, Any]) -> tuple[str, int] | None:
    """(format, kbit/s) to transcode to, or None for the original bytes."""
    fmt = (call.get("format") or "").lower()
    max_kbps = call.int("maxBitRate", 0, 0, 100_000) or 0
    if fmt == "raw":
        return None
    source_kbps = (file["bitrate"] or 0) // 1000
    if fmt in TARGETS:
        kbps = bitrate_for(fmt, max_kbps)
        same = FORMATS.get(file["codec"], ("",))[0] == TARGETS[fmt][3]
        if same and (not max_kbps or source_kbps <= max_kbps):
            return None  # already what was asked for
        return fmt, kbps
    if max_kbps and (file["codec"] in LOSSLESS or source_kbps > max_kbps):
        return "mp3", bitrate_for("mp3", max_kbps)  # what every client plays
    return None


def stream(call: Call) -> Response:
    _, file, path = _song_file(call)
    target = _target(call, file)
    if target is None:
        return _original(file, path)
    fmt, kbps = target
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    length = None
    if call.flag("estimateContentLength"):
        length = estimated_length(fmt, kbps, file["duration_ms"] or 0)
        headers["Content-Length"] = str(length)
    return StreamingResponse(transcode(path, fmt, kbps, length=length),
                             media_type=TARGETS[fmt][2], headers=headers)


def download(call: Call) -> Response:
    rowid, file, path = _song_file(call)
    name = entries.songs(call.archive, [rowid])[0]["path"].rsplit("/", 1)[-1]
    return _original(file, path, attachment=name)


def _art_files(call: Call, value: str) -> list[str]:
    """SHA-256s of the files that may embed the art of a song, album or artist id."""
    conn = call.archive.conn
    if value.startswith("tr-"):
        tracks = [parse_id(value, "tr")]
    elif value.startswith("al-"):
        tracks = [r for (r,) in conn.execute(
            "SELECT rowid FROM tracks WHERE album_rowid = ? ORDER BY disc_number, "
            "track_number, rowid LIMIT 50", (parse_id(value, "al"),))]
    elif value.startswith("ar-"):
        albums = call.snap.artist_albums.get(parse_id(value, "ar"), [])
        return _art_files(call, f"al-{albums[0]}") if albums else []
    else:
        raise SubsonicError(NOT_FOUND, "no such cover art")
    files = entries.song_files(call.archive, tracks)
    return [files[t]["sha256"] for t in tracks if t in files]


def _resized(data: bytes, size: int) -> tuple[bytes, str] | None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((size, size))
            keep_alpha = image.mode in ("RGBA", "LA", "P")
            image = image.convert("RGBA" if keep_alpha else "RGB")
            out = io.BytesIO()
            image.save(out, "PNG" if keep_alpha else "JPEG", quality=88)
    except Exception:  # noqa: BLE001 - a picture Pillow cannot read is no art
        return None
    return out.getvalue(), "image/png" if keep_alpha else "image/jpeg"


def get_cover_art(call: Call) -> Response:
    value = call.require("id")
    size = call.int("size", None, 1, MAX_ART_SIZE)
    for sha256 in _art_files(call, value):
        found = call.request.app.state.art.get(call.archive, sha256)
        if found is None:
            continue
        data, mime = found
        if size is not None:
            resized = _resized(data, size)
            if resized is None:
                continue
            data, mime = resized
        return Response(data, media_type=mime, headers=ART_HEADERS)
    raise SubsonicError(NOT_FOUND, "no cover art")


def scrobble(call: Call) -> dict[str, Any]:
    """Accepted always; written only with `musicark serve --record-plays`, to a plays log
    beside the catalog (never into it: serving stays read-only)."""
    ids = [parse_id(v, "tr") for v in call.all("id")]
    if not ids:
        raise SubsonicError(10, "required parameter is missing: id")
    times = call.all("time")
    log = call.state.plays_log
    if log is None:
        return {}
    found = {r: a for r, a in call.archive.conn.execute(
        f"SELECT rowid, album_rowid FROM tracks WHERE rowid IN ({','.join('?' * len(ids))})",
        ids)}
    lines = []
    for i, rowid in enumerate(ids):
        if rowid not in found:
            raise SubsonicError(NOT_FOUND, f"no such song: tr-{rowid}")
        when = times[i] if i < len(times) and times[i].isdigit() else None
        lines.append(json.dumps({
            "at": utc_now(), "user": call.user, "track_rowid": rowid,
            "album_rowid": found[rowid], "time": int(when) if when else None,
            "submission": call.flag("submission", True)}) + "\n")
    data = "".join(lines).encode("utf-8")
    try:  # one O_APPEND write per request: lines from concurrent requests never interleave
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except OSError as exc:
        raise SubsonicError(GENERIC, f"cannot record plays: {exc.strerror}") from None
    return {}


METHODS = {"stream": stream, "download": download, "getCoverArt": get_cover_art,
           "scrobble": scrobble}
